import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
const base = process.env.GW;
const c = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused', maxRetries: 2 });
const log = (k, v) => console.log(k, JSON.stringify(v)?.slice(0, 300));
async function t(name, f) { try { await f(); } catch (e) { console.log('ERR', name, e.constructor.name, e.status, e.message?.slice(0, 200), JSON.stringify(e.error)?.slice(0,200)); } }
await t('plain-llama', async () => { const r = await c.chat.completions.create({ model: 'local', messages: [{ role: 'user', content: 'hi' }] }); log('plain-llama', r.choices[0].message); });
await t('plain-front', async () => { const r = await c.chat.completions.create({ model: 'claude-only', messages: [{ role: 'user', content: 'hi' }] }); log('plain-front', [r.choices[0].message, r.usage]); });
await t('stream', async () => { const s = await c.chat.completions.create({ model: 'claude-only', stream: true, stream_options: {include_usage: true}, messages: [{ role: 'user', content: 'hi' }] }); let txt = ''; let u; for await (const ch of s) { txt += ch.choices[0]?.delta?.content ?? ''; if (ch.usage) u = ch.usage; } log('stream', [txt, u]); });
await t('stream-llama', async () => { const s = await c.chat.completions.create({ model: 'local', stream: true, messages: [{ role: 'user', content: 'hi' }] }); let txt = ''; for await (const ch of s) txt += ch.choices[0]?.delta?.content ?? ''; log('stream-llama', txt); });
const tools = [{ type: 'function', function: { name: 'get_weather', description: 'w', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
for (const m of ['claude-only', 'smart', 'local']) await t('tools-' + m, async () => {
  const r = await c.chat.completions.create({ model: m, tools, tool_choice: m === 'local' ? 'required' : 'auto', messages: [{ role: 'user', content: 'weather in Paris?' }] });
  const msg = r.choices[0].message; log('tools-' + m, [r.choices[0].finish_reason, msg.tool_calls]);
  const r2 = await c.chat.completions.create({ model: m, tools, messages: [{ role: 'user', content: 'weather?' }, msg, ...msg.tool_calls.map(tc => ({ role: 'tool', tool_call_id: tc.id, content: 'sunny' }))] });
  log('tools2-' + m, r2.choices[0].message.content);
});
await t('runTools', async () => {
  const runner = c.chat.completions.runTools({ model: 'claude-only', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, function: async (a) => 'sunny', parse: JSON.parse } }] });
  log('runTools', await runner.finalContent());
});
await t('stream-tools', async () => { const s = c.chat.completions.stream({ model: 'claude-only', tools, messages: [{ role: 'user', content: 'weather?' }] }); const f = await s.finalChatCompletion(); log('stream-tools', f.choices[0].message.tool_calls); });
const Ev = z.object({ name: z.string(), date: z.string(), participants: z.array(z.string()) });
for (const m of ['claude-only', 'smart', 'local']) await t('parse-' + m, async () => { const r = await c.chat.completions.parse({ model: m, messages: [{ role: 'user', content: 'event' }], response_format: zodResponseFormat(Ev, 'event') }); log('parse-' + m, r.choices[0].message.parsed); });
await t('err-404-model', async () => { await c.chat.completions.create({ model: 'nope/x', messages: [{ role: 'user', content: 'x' }] }); log('404', 'no error?'); });
await t('err-400', async () => { await c.chat.completions.create({ model: 'claude-only', messages: [{ role: 'user', content: 'FAIL400' }] }); });
await t('err-429', async () => { const t0 = Date.now(); try { await c.chat.completions.create({ model: 'claude-only', messages: [{ role: 'user', content: 'FAIL429' }] }); } finally { console.log('429 took ms', Date.now() - t0); } });
await t('err-bad-body', async () => { await c.chat.completions.create({ model: 'claude-only', messages: 'hello' }); });
await t('cancel', async () => { const ac = new AbortController(); const s = await c.chat.completions.create({ model: 'claude-only', stream: true, messages: [{ role: 'user', content: 'SLOWLY' }] }, { signal: ac.signal }); let n = 0; for await (const ch of s) { if (++n == 3) ac.abort(); } });
await t('models', async () => { const r = await c.models.list(); log('models', r.data.map(m => m.id)); });
await t('embeddings', async () => { const r = await c.embeddings.create({ model: 'smart-local', input: 'hi' }); log('emb', r.data[0].embedding.length); });
