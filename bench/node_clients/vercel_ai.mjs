import { generateText, streamText, generateObject, streamObject, tool, stepCountIs, Output } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { z } from 'zod';
const GW = process.env.GW;  // the gateway, e.g. http://127.0.0.1:4000
const oa = createOpenAI({ baseURL: GW + '/v1', apiKey: 'unused' });
const an = createAnthropic({ baseURL: GW + '/v1', apiKey: 'unused' });
const log = (k, v) => console.log(k, JSON.stringify(v)?.slice(0, 300));
async function t(name, f) { try { await f(); } catch (e) { console.log('ERR', name, e.constructor.name, e.statusCode, (e.message || '').slice(0, 250), e.isRetryable, JSON.stringify(e.lastError?.responseBody ?? e.responseBody)?.slice(0, 200)); } }
const models = { 'responses': (m) => oa(m), 'chat': (m) => oa.chat(m), 'anthropic': (m) => an(m) };
const weather = tool({ description: 'weather', inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => `sunny in ${city}` });
for (const [kind, mk] of Object.entries(models)) for (const route of ['claude-only', 'smart', 'local']) {
  const m = mk(route); const k = `${kind}/${route}`;
  await t('gen ' + k, async () => { const r = await generateText({ model: m, prompt: 'hi', maxRetries: 0 }); log('gen ' + k, [r.text, r.usage.inputTokens, r.finishReason]); });
  await t('stream ' + k, async () => { const r = streamText({ model: m, prompt: 'hi', maxRetries: 0, onError: ({error}) => { throw error; } }); let s = ''; for await (const d of r.textStream) s += d; log('stream ' + k, [s, (await r.usage).outputTokens]); });
  if (route === 'local') continue;
  await t('tools ' + k, async () => { const r = await generateText({ model: m, prompt: 'weather in Paris?', tools: { weather }, stopWhen: stepCountIs(3), maxRetries: 0 }); log('tools ' + k, [r.text, r.steps.length, r.steps[0].toolCalls.map(c => c.input)]); });
  await t('streamtools ' + k, async () => { const r = streamText({ model: m, prompt: 'weather in Paris?', tools: { weather }, stopWhen: stepCountIs(3), maxRetries: 0 }); let s=''; for await (const p of r.fullStream) { if (p.type === 'error') throw p.error; if (p.type==='text-delta') s+=p.text; } log('streamtools ' + k, [s, (await r.steps).length]); });
  await t('object ' + k, async () => { const r = await generateObject({ model: m, schema: z.object({ name: z.string(), age: z.number(), tags: z.array(z.string()) }), prompt: 'a person', maxRetries: 0 }); log('object ' + k, r.object); });
  await t('streamobject ' + k, async () => { const r = streamObject({ model: m, schema: z.object({ name: z.string(), age: z.number() }), prompt: 'a person', maxRetries: 0, onError: ({error}) => { throw error; } }); for await (const _ of r.partialObjectStream); log('streamobject ' + k, await r.object); });
}
for (const [kind, mk] of Object.entries(models)) {
  await t('err400 ' + kind, async () => { await generateText({ model: mk('claude-only'), prompt: 'FAIL400', maxRetries: 0 }); });
  await t('err429 ' + kind, async () => { await generateText({ model: mk('claude-only'), prompt: 'FAIL429', maxRetries: 0 }); });
  await t('abort ' + kind, async () => { const ac = new AbortController(); const r = streamText({ model: mk('claude-only'), prompt: 'SLOWLY', abortSignal: ac.signal, maxRetries: 0 }); let n = 0; for await (const d of r.textStream) { if (++n === 3) ac.abort(); } log('abort ' + kind, n); });
}
