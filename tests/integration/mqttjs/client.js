// One MQTT.js client for test_mqttjs.py, driven by a JSON plan in the file argv[2]:
//   { url, protocolVersion, clientId, ca (file, for wss://), subscribe: [{topic, qos}],
//     expect: N, publish: [{topic, payload, qos, retain}], timeoutMs }
// It connects, subscribes, prints {"event":"subscribed","granted":[...]} and waits for
// `expect` messages; then publishes each of `publish` (waiting for its QoS flow to end),
// prints {"event":"done","messages":[{topic, payload, qos, retain}],"published":N} and exits 0.
// Any error or the timeout prints {"event":"error","error":"..."} and exits 1.
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
// Exits once the line is written: stdout to a pipe is asynchronous, and process.exit()
// right after a write of some 100 KB would cut it short.
const sayAndExit = (o, code) => process.stdout.write(JSON.stringify(o) + '\n', () => process.exit(code));
const fail = (why) => sayAndExit({ event: 'error', error: String(why) }, 1);
setTimeout(() => fail('timed out'), plan.timeoutMs || 15000);

const options = {
  protocolVersion: plan.protocolVersion || 4,
  clientId: plan.clientId,
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: 10000,
};
if (plan.ca) {
  options.ca = fs.readFileSync(plan.ca);
  options.rejectUnauthorized = true;
}
const client = mqtt.connect(plan.url, options);
const messages = [];
let published = 0;

async function publishAll() {
  for (const p of plan.publish || []) {
    await client.publishAsync(p.topic, Buffer.from(p.payload, 'base64'),
      { qos: p.qos || 0, retain: !!p.retain });
    published += 1;
  }
  await client.endAsync();
  sayAndExit({ event: 'done', messages, published }, 0);
}

client.on('error', fail);
client.on('message', (topic, payload, packet) => {
  messages.push({ topic, payload: payload.toString('base64'), qos: packet.qos,
                  retain: !!packet.retain });
  if (messages.length === (plan.expect || 0)) publishAll().catch(fail);
});
client.on('connect', async () => {
  try {
    const granted = [];
    for (const s of plan.subscribe || []) {
      const g = await client.subscribeAsync(s.topic, { qos: s.qos || 0 });
      granted.push(...g.map((x) => x.qos));
    }
    say({ event: 'subscribed', granted });
    if (!plan.expect) await publishAll();
  } catch (e) {
    fail(e);
  }
});
