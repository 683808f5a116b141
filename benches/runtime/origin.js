// The benchmark's origin: 24-byte HTTP responses on 10.77.0.50:8080, and the same over TLS
// on 10.77.0.50:8443 (certificate and key paths in BENCH_CERT, BENCH_KEY).
var body = 'abcdefghijklmnopqrstuvwx'
var reply = pipeline($=>$.serveHTTP(new Message({ status: 200 }, body)))

pipy.listen('10.77.0.50:8080', $=>$.serveHTTP(new Message({ status: 200 }, body)))
pipy.listen('10.77.0.50:8443', $=>$
  .acceptTLS({
    certificate: {
      cert: new crypto.Certificate(os.readFile(os.env['BENCH_CERT'])),
      key: new crypto.PrivateKey(os.readFile(os.env['BENCH_KEY'])),
    },
  }).to(reply)
)
