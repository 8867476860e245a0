import Anthropic from '@anthropic-ai/sdk';
const base = process.env.GW;
const c = new Anthropic({ baseURL: base, apiKey: 'unused', maxRetries: 2 });
const log = (k, v) => console.log(k, JSON.stringify(v)?.slice(0, 300));
async function t(name, f) { try { await f(); } catch (e) { console.log('ERR', name, e.constructor.name, e.status, e.message?.slice(0, 250)); } }
const M = process.env.M || 'claude-only';
await t('plain', async () => { const r = await c.messages.create({ model: M, max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }); log('plain', [r.content, r.usage, r.stop_reason]); });
await t('plain-llama', async () => { const r = await c.messages.create({ model: 'local', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }); log('plain-llama', [r.content, r.stop_reason]); });
await t('stream', async () => { const s = c.messages.stream({ model: M, max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }); let txt=''; s.on('text', d => txt += d); const f = await s.finalMessage(); log('stream', [txt, f.usage]); });
await t('stream-llama', async () => { const s = c.messages.stream({ model: 'local', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }); const f = await s.finalMessage(); log('stream-llama', f.content); });
const tools = [{ name: 'get_weather', description: 'w', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
for (const m of [M, 'smart']) await t('tools-' + m, async () => {
  const r = await c.messages.create({ model: m, max_tokens: 100, tools, messages: [{ role: 'user', content: 'weather?' }] });
  log('tools-' + m, [r.stop_reason, r.content]);
  const tu = r.content.find(b => b.type === 'tool_use');
  const r2 = await c.messages.create({ model: m, max_tokens: 100, tools, messages: [{ role: 'user', content: 'weather?' }, { role: 'assistant', content: r.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: 'sunny' }] }] });
  log('tools2-' + m, r2.content);
});
await t('stream-tools-smart', async () => { const s = c.messages.stream({ model: 'smart', max_tokens: 100, tools, messages: [{ role: 'user', content: 'weather?' }] }); const f = await s.finalMessage(); log('stream-tools', f.content); });
await t('toolRunner', async () => {
  if (!c.beta.messages.toolRunner) { console.log('no toolRunner'); return; }
  const r = await c.beta.messages.toolRunner({ model: 'smart', max_tokens: 100, messages: [{ role: 'user', content: 'weather?' }], tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, run: async () => 'sunny', parse: (x) => x }] });
  log('toolRunner', r.content);
});
await t('count_tokens', async () => { const r = await c.messages.countTokens({ model: M, messages: [{ role: 'user', content: 'hi there' }] }); log('count', r); });
await t('models', async () => { const r = await c.models.list(); log('models', r.data.slice(0,3)); });
await t('err-400', async () => { await c.messages.create({ model: M, max_tokens: 10, messages: [{ role: 'user', content: 'FAIL400' }] }); });
await t('err-missing-max_tokens', async () => { await c.messages.create({ model: M, messages: [{ role: 'user', content: 'x' }] }); });
await t('err-stream-400', async () => { const s = c.messages.stream({ model: M, max_tokens: 10, messages: [{ role: 'user', content: 'FAIL400' }] }); await s.finalMessage(); });
await t('cancel', async () => { const s = c.messages.stream({ model: M, max_tokens: 100, messages: [{ role: 'user', content: 'SLOWLY' }] }); let n=0; s.on('text', () => { if (++n == 3) s.abort(); }); await s.finalMessage(); });
await t('err-529', async () => { const t0=Date.now(); try { await c.messages.create({ model: M, max_tokens: 10, messages: [{ role: 'user', content: 'FAIL529' }] }); } finally { console.log('529 ms', Date.now()-t0); } });
