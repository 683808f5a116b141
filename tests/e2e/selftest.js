// Runs the shared decision vectors (tests/vectors/decisions.json, path in EGRESSC_VECTORS)
// against the generated sidecar's decision module and the gateway's admission module, inside
// Pipy. The e2e suite copies this file next to a generated sidecar/decide.js and
// gateway/admit.js and runs it, with the vectors file augmented by `matchers` (the route
// regexes' matchers as egressc compiles them, by `path:`/`value:` key) and each gateway
// config by the RefusedRanges and Limits of a generated gateway/config.json;
// it writes one line per failure and a closing count to the file EGRESSC_SELFTEST_OUT, and
// exits 1 when a vector fails.
import decide from './decide.js'
import admit from './admit.js'
import spiffe from './spiffe.js'

// `((N*S))` in a string: S repeated N times.
function expandText(s) {
  var out = ''
  var i = 0
  for (var open = s.indexOf('(('); open >= 0; open = s.indexOf('((', i)) {
    var star = s.indexOf('*', open)
    var close = s.indexOf('))', star)
    var n = Number.parseInt(s.substring(open + 2, star))
    out += s.substring(i, open) + s.substring(star + 1, close).repeat(n)
    i = close + 2
  }
  return out + s.substring(i)
}

function expand(v) {
  if (typeof v === 'string') return expandText(v)
  if (v instanceof Array) return v.map(expand)
  if (v !== null && typeof v === 'object') {
    var o = {}
    Object.keys(v).forEach(function (k) { o[expandText(k)] = expand(v[k]) })
    return o
  }
  return v
}

var v = expand(JSON.decode(os.readFile(os.env['EGRESSC_VECTORS'])))
var passed = 0
var failures = []

function check(what, got, want) {
  if (got === want) {
    passed++
  } else {
    failures.push(what.substring(0, 200) + ': got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want))
  }
}

// Headers as Pipy's HTTP/1 decoder gives them: the last of a repeated name, but cookie and
// set-cookie as a list.
function pipyHeaders(list) {
  var headers = {}
  list.forEach(function (h) {
    var name = h[0].toLowerCase()
    var old = headers[name]
    if ((name === 'cookie' || name === 'set-cookie') && old !== undefined) {
      headers[name] = old instanceof Array ? old.concat([h[1]]) : [old, h[1]]
    } else {
      headers[name] = h[1]
    }
  })
  return headers
}

function matcher(key) {
  var m = v.matchers[key]
  if (!m) failures.push('no matcher for ' + key)
  return m || null
}

v.normalizeHost.forEach(function (c) {
  check('normalizeHost ' + JSON.stringify(c.in), decide.normalizeHost(c.in), c.out)
})
v.normalizeName.forEach(function (c) {
  check('normalizeName ' + JSON.stringify(c.in), decide.normalizeName(c.in), c.out)
})
v.hostMatch.forEach(function (c) {
  var set = decide.hostSet([c.pattern])
  check('hostMatch ' + c.pattern + ' ' + c.host, decide.matches(set, c.host), c.match)
})
v.hostPatterns.forEach(function (c) {
  var found = decide.matchingPatterns(decide.hostSet(c.patterns), c.host).sort()
  check('hostPatterns ' + c.host, JSON.stringify(found), JSON.stringify(c.matches))
})
v.dnsName.forEach(function (c) {
  check('dnsName ' + JSON.stringify(c.name), decide.isDnsName(c.name), c.ok)
})
v.ipv4.forEach(function (c) {
  check('ipv4 ' + c.text.substring(0, 40), decide.isIPv4(c.text), c.ok)
})
v.suspiciousPath.forEach(function (c) {
  check('suspiciousPath ' + c.path, decide.suspicious(c.path), c.suspicious)
})
v.printablePath.forEach(function (c) {
  check('printablePath ' + JSON.stringify(c.path), decide.printablePath(c.path), c.ok)
})
v.printableValue.forEach(function (c) {
  check('printableValue ' + JSON.stringify(c.value), decide.printableValue(c.value), c.ok)
})
v.request.forEach(function (c) {
  var head = { method: c.method, path: c.path, headers: pipyHeaders(c.headers) }
  if (c.authority !== undefined) {
    head.authority = c.authority
    head.scheme = 'http'
  }
  check('request ' + JSON.stringify(c), decide.requestProblem(head, v.limits), c.reason)
})
v.routeMatch.forEach(function (c) {
  var m = matcher((c.mode === 'path' ? 'path:' : 'value:') + c.regex)
  check('routeMatch ' + c.regex + ' ' + c.text, m !== null && decide.matcherMatches(m, c.text), c.match)
})
v.route.forEach(function (c) {
  var r = c.route
  var methods = null
  if (r.methods.length > 0) {
    methods = {}
    r.methods.forEach(function (m) { methods[m] = true })
  }
  var route = {
    anyPath: false,
    path: matcher('path:' + r.path),
    methods: methods,
    headers: Object.keys(r.headers).map(function (name) {
      return { name: name, matcher: matcher('value:' + r.headers[name]) }
    }),
  }
  var head = { method: c.request.method, path: c.request.path, headers: pipyHeaders(c.request.headers) }
  var q = head.path.indexOf('?')
  var path = q >= 0 ? head.path.substring(0, q) : head.path
  check('route ' + JSON.stringify(c), decide.routeAllows(route, head, path), c.match)
})

v.gatewayAdmission.forEach(function (g) {
  g.tunnels.forEach(function (t) {
    var lists = admit.compile(g.config, t.podIPs)
    var d = admit.refusal(lists, t.identity, t.target, t.local)
    check('gatewayAdmission ' + JSON.stringify(t) + ' (' + d.why + ')', d.why === null, t.ok)
  })
})

v.spiffe.forEach(function (c) {
  var der = c.der === '' ? [] : Data.from(c.der, 'hex').toArray()
  var r = spiffe.certificateIdentity(der, c.trustDomain)
  check('spiffe ' + c.about + ' (' + r.why + ')', r.identity === undefined ? null : r.identity, c.identity)
})

// The report goes to a file (EGRESSC_SELFTEST_OUT): Pipy's log may not be flushed at exit.
var report = failures.map(function (f) { return 'selftest FAIL ' + f + '\n' }).join('')
report += 'selftest: ' + passed + ' vectors agree, ' + failures.length + ' disagree\n'
os.writeFile(os.env['EGRESSC_SELFTEST_OUT'], report)
pipy.exit(failures.length > 0 ? 1 : 0)
