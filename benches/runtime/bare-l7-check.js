// The L7 reference plus the one per-request check a faithful policy cannot drop: every header
// name must be an RFC 9110 token (what refuses a `Transfer-Encoding :` that a proxy and an
// origin may read differently), else 403. Written as the sidecar writes it: a memo of names
// seen, and a pipeline chosen per request. No rules at all.
var $target
var TOKEN = new RegExp("^[!#$%&'*+.^_`|~0-9a-z-]+$")
var tokens = {}
var tokenCount = 0

function choose(msg) {
  var names = Object.keys(msg.head.headers)
  for (var i = 0; i < names.length; i++) {
    var n = names[i]
    if (tokens[n] !== true) {
      if (!TOKEN.test(n)) return refuse
      if (tokenCount < 1024) {
        tokens[n] = true
        tokenCount++
      }
    }
  }
  return forward
}

var forward = pipeline($=>$.muxHTTP(() => $target).to($=>$.connect(() => $target)))
var refuse = pipeline($=>$.replaceMessage(new Message({ status: 403 })))

pipy.listen('127.0.0.1:15001', $=>$
  .onStart(function (ib) {
    var raw = new Data
    ib.socket.getRawOption(0, 80, raw)
    var b = raw.toArray()
    $target = b[4] + '.' + b[5] + '.' + b[6] + '.' + b[7] + ':' + ((b[2] << 8) | b[3])
  })
  .demuxHTTP().to($=>$.pipe(choose))
)
