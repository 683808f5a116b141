// Runs the shared decision vectors (tests/vectors/decisions.json, path in EGRESSC_VECTORS)
// against the generated sidecar's decision module, inside Pipy. The e2e suite copies this
// file next to a generated sidecar/decide.js and runs it; it writes one line per failure and a
// closing count to the file EGRESSC_SELFTEST_OUT, and exits 1 when a vector fails.
import decide from './decide.js'

var v = JSON.decode(os.readFile(os.env['EGRESSC_VECTORS']))
var passed = 0
var failures = []

function check(what, got, want) {
  if (got === want) {
    passed++
  } else {
    failures.push(what + ': got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want))
  }
}

v.normalizeHost.forEach(function (c) {
  check('normalizeHost ' + JSON.stringify(c.in), decide.normalizeHost(c.in), c.out)
})
v.hostMatch.forEach(function (c) {
  var set = decide.hostSet([c.pattern])
  check('hostMatch ' + c.pattern + ' ' + c.host, decide.matches(set, c.host), c.match)
})
v.hostPatterns.forEach(function (c) {
  var found = decide.matchingPatterns(decide.hostSet(c.patterns), c.host).sort()
  check('hostPatterns ' + c.host, JSON.stringify(found), JSON.stringify(c.matches))
})
v.requestHead.forEach(function (c) {
  var headers = {}
  c.headers.forEach(function (h) { headers[h[0]] = h[1] })
  check('requestHead ' + JSON.stringify(c.headers), decide.framingProblem(headers) !== null, c.refused)
})
v.suspiciousPath.forEach(function (c) {
  check('suspiciousPath ' + c.path, decide.suspicious.test(c.path), c.suspicious)
})
v.dnsName.forEach(function (c) {
  check('dnsName ' + JSON.stringify(c.name), decide.isDnsName(c.name), c.ok)
})
v.printablePath.forEach(function (c) {
  check('printablePath ' + JSON.stringify(c.path), decide.printablePath.test(c.path), c.ok)
})
v.routeRegex.forEach(function (c) {
  check('routeRegex ' + c.regex + ' ' + c.path, decide.anchored(c.regex).test(c.path), c.match)
})

// The report goes to a file (EGRESSC_SELFTEST_OUT): Pipy's log may not be flushed at exit.
var report = failures.map(function (f) { return 'selftest FAIL ' + f + '\n' }).join('')
report += 'selftest: ' + passed + ' vectors agree, ' + failures.length + ' disagree\n'
os.writeFile(os.env['EGRESSC_SELFTEST_OUT'], report)
pipy.exit(failures.length > 0 ? 1 : 0)
