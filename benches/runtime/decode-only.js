// The start-up floor a sidecar config sets by its size alone: reading and decoding the file
// in EGRESSC_CONFIG (os.readFile, JSON.decode), then listening. Nothing is compiled.
var config = JSON.decode(os.readFile(os.env['EGRESSC_CONFIG']))

pipy.listen('127.0.0.1:15999', $=>$.dummy())
