// The fallback upstream when nginx is not installed: a fixed small body on every path.
//   node bench/servers/upstream.mjs BODY   → prints {"ports":[A,B]}
import http from 'node:http'

const body = Buffer.from(process.argv[2] ?? 'ok\n')
const handler = (req, res) => {
  req.resume()
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
  res.end(body)
}
const listen = () => new Promise(resolve => {
  const server = http.createServer({ keepAliveTimeout: 75_000 }, handler)
  server.listen(0, '127.0.0.1', () => resolve(server.address().port))
})
const ports = [await listen(), await listen()]
process.stdout.write(`${JSON.stringify({ ports })}\n`)
process.on('SIGTERM', () => process.exit(0))
