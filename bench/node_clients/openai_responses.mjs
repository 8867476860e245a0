import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
const c = new OpenAI({ baseURL: process.env.GW + '/v1', apiKey: 'unused', maxRetries: 0 });
const log = (k, v) => console.log(k, JSON.stringify(v)?.slice(0, 300));
async function t(name, f) { try { await f(); } catch (e) { console.log('ERR', name, e.constructor.name, e.status, e.message?.slice(0, 250)); } }
const tools = [{ type: 'function', name: 'get_weather', description: 'w', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false }, strict: true }];
for (const m of ['smart', 'claude-only']) {
  await t('plain ' + m, async () => { const r = await c.responses.create({ model: m, input: 'hi' }); log('plain ' + m, [r.output_text, r.status, r.usage]); });
  await t('tools+prev ' + m, async () => {
    const r = await c.responses.create({ model: m, input: 'weather in Paris?', tools });
    const fc = r.output.find(o => o.type === 'function_call'); log('fc ' + m, fc);
    const r2 = await c.responses.create({ model: m, previous_response_id: r.id, tools, input: [{ type: 'function_call_output', call_id: fc.call_id, output: 'sunny' }] });
    log('after ' + m, r2.output_text);
    const r3 = await c.responses.create({ model: m, previous_response_id: r2.id, input: 'and tomorrow?' }); log('3rd ' + m, r3.output_text);
  });
  await t('stream ' + m, async () => { const s = c.responses.stream({ model: m, input: 'hi' }); let txt=''; s.on('response.output_text.delta', e => txt += e.delta); const f = await s.finalResponse(); log('stream ' + m, [txt, f.status]); });
  await t('stream tools ' + m, async () => { const s = c.responses.stream({ model: m, input: 'weather?', tools }); const f = await s.finalResponse(); log('stream tools ' + m, f.output.map(o => o.type + ':' + (o.arguments ?? ''))); });
  await t('parse ' + m, async () => { const r = await c.responses.parse({ model: m, input: 'person', text: { format: zodTextFormat(z.object({ name: z.string(), age: z.number() }), 'person') } }); log('parse ' + m, r.output_parsed); });
  await t('retrieve ' + m, async () => { const r = await c.responses.create({ model: m, input: 'hi' }); const g = await c.responses.retrieve(r.id); log('retrieve ' + m, g.output_text); await c.responses.delete(r.id); log('deleted', 1); await c.responses.retrieve(r.id); });
  await t('bad prev ' + m, async () => { await c.responses.create({ model: m, previous_response_id: 'resp_nope', input: 'x' }); });
  await t('cancel stream ' + m, async () => { const ac = new AbortController(); const s = await c.responses.create({ model: m, input: 'SLOWLY', stream: true }, { signal: ac.signal }); let n=0; for await (const e of s) { if (e.type === 'response.output_text.delta' && ++n === 3) ac.abort(); } });
  await t('input items ' + m, async () => { const r = await c.responses.create({ model: m, input: 'hi' }); const items = await c.responses.inputItems.list(r.id); log('items', items.data.map(i => i.type)); });
}
await t('err 429', async () => { await c.responses.create({ model: 'smart', input: 'FAIL429' }); });
