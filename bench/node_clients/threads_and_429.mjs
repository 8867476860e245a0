import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
const c = new Anthropic({ baseURL: process.env.GW, apiKey: 'unused', maxRetries: 0 });
for (const m of ['claude-only', 'smart']) {
  const r = await c.beta.messages.toolRunner({ model: m, max_tokens: 100, messages: [{ role: 'user', content: 'weather?' }], tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, run: async () => 'sunny', parse: (x) => x }] });
  console.log('toolRunner', m, JSON.stringify(r.content));
  const th = c.beta.messages.thread({ model: m, max_tokens: 50, unsupportedRequestBehavior: 'continue_unthreaded' });
  await th.send({ role: 'user', content: 'I am Ada' }); const a = await th.send({ role: 'user', content: 'name?' }); console.log('thread', m, JSON.stringify(a.content));
}
try { await c.messages.create({ model: 'smart', max_tokens: 10, messages: [{ role: 'user', content: 'FAIL429' }] }); } catch (e) { console.log('anthropic 429:', e.constructor.name, e.status, e.headers?.get?.('retry-after')); }
const o = new OpenAI({ baseURL: process.env.GW + '/v1', apiKey: 'unused', maxRetries: 0 });
try { await o.chat.completions.create({ model: 'smart', messages: [{ role: 'user', content: 'FAIL429' }] }); } catch (e) { console.log('openai 429:', e.constructor.name, e.status, e.headers?.get?.('retry-after'), e.message.slice(0,120)); }
try { await o.responses.create({ model: 'smart', input: 'FAIL429' }); } catch (e) { console.log('responses 429:', e.constructor.name, e.status, e.headers?.get?.('retry-after')); }
