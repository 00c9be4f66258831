// A closed-loop client for measurements counted per request (instructions,
// system calls) rather than timed: `connections` keep-alive connections, kept
// open across calls so that connection setup stays out of the samples, send
// the 'api' mix of bench/lib/mix.lua (the bytes wrk sends).
//   const client = await connect(port, 50)
//   const failed = await client.send(5000)   // exactly 5000 requests; failed: answers other than 200
//   client.close()
import net from 'node:net'

export async function connect (port, connections) {
  let seed = 42
  const random = n => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n
  const requests = Array.from({ length: 4096 }, (_, i) => Buffer.from(
    `GET /api/${i % 2 === 0 ? 'orders' : 'carts'}/${i} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nx-user-id: user-${1 + random(100000)}\r\n\r\n`
  ))
  let sent = 0
  let toSend = 0
  let answered = 0
  let failed = 0
  let batch = null

  const next = socket => {
    if (toSend === 0) return
    toSend--
    socket.write(requests[sent++ % requests.length])
  }
  const sockets = await Promise.all(Array.from({ length: connections }, () => new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket))
    socket.on('error', err => (batch === null ? reject(err) : batch.reject(err)))
    let pending = Buffer.alloc(0)
    socket.on('data', chunk => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      for (;;) {
        const end = pending.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = pending.subarray(0, end).toString('latin1')
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (pending.length < end + 4 + length) return
        if (!head.startsWith('HTTP/1.1 200 ')) failed++
        pending = pending.subarray(end + 4 + length)
        if (--answered === 0) batch.resolve(failed)
        else next(socket)
      }
    })
  })))

  return {
    send (count) {
      return new Promise((resolve, reject) => {
        batch = { resolve, reject }
        toSend = count
        answered = count
        failed = 0
        for (const socket of sockets) next(socket)
      })
    },
    close () {
      for (const socket of sockets) socket.destroy()
    }
  }
}
