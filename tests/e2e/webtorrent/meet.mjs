// Two WebTorrent tracker clients (bittorrent-tracker, as browsers run it)
// that can only find each other through the tracker at process.argv[2]
// (ws://host:port/announce): a seeder, then a leecher. Each must open a
// WebRTC data channel to the other, through the offer and answer the
// tracker relays, and read the other's greeting over it. Prints the
// tracker's counts as each client saw them, then OK; exits 1 on a failure
// or after 30 s.
import Client from 'bittorrent-tracker'
import wrtc from '@roamhq/wrtc'

const announce = [process.argv[2]]
const infoHash = 'ab'.repeat(20)
const greetings = new Set()

const deadline = setTimeout(() => fail('no WebRTC connection within 30 s'), 30000)

function fail (why) {
  console.log(`FAIL ${why}`)
  process.exit(1)
}

function start (name, idByte, left) {
  const peerId = Buffer.from(`-WW0208-${idByte.repeat(12)}`)
  const client = new Client({ infoHash, peerId, announce, port: 6881, wrtc, getAnnounceOpts: () => ({ left }) })
  client.on('error', error => fail(`${name}: ${error.message}`))
  client.on('warning', error => fail(`${name} warned: ${error.message}`))
  client.on('update', data => console.log(`${name} update complete=${data.complete} incomplete=${data.incomplete}`))
  client.on('peer', peer => {
    peer.on('data', data => {
      const text = Buffer.from(data).toString()
      console.log(`${name} received "${text}"`)
      greetings.add(text)
      if (greetings.size === 2) {
        clearTimeout(deadline)
        console.log('OK')
        process.exit(0)
      }
    })
    const greet = () => peer.send(`hello from the ${name}`)
    if (peer.connected) greet()
    else peer.once('connect', greet)
  })
  client.start()
}

start('seeder', 's', 0)
// The seeder's first announce, with its offers, finds nobody; the
// leecher's finds the seeder, which gets the leecher's offer.
setTimeout(() => start('leecher', 'l', 1000), 300)
