// The L7 reference: a bare transparent HTTP proxy, demuxHTTP -> muxHTTP to the original
// destination. No policy at all.
var $target

pipy.listen('127.0.0.1:15001', $=>$
  .onStart(function (ib) {
    var raw = new Data
    ib.socket.getRawOption(0, 80, raw)
    var b = raw.toArray()
    $target = b[4] + '.' + b[5] + '.' + b[6] + '.' + b[7] + ':' + ((b[2] << 8) | b[3])
  })
  .demuxHTTP().to($=>$
    .muxHTTP(() => $target).to($=>$.connect(() => $target))
  )
)
