// The embedded engine through the official `openai` npm client (issue 14): run by OpenAiNodeClientTest with
// OPENAI_BASE_URL set to a tethered engine serving `tiny`. Each check throws (exit 1) with what differed.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: 'tether', maxRetries: 0 });
const hi = [{ role: 'user', content: 'hi' }];
let checks = 0;
async function check(name, body) {
  try {
    await body();
    checks++;
  } catch (e) {
    console.error(`FAILED ${name}: ${e.stack ?? e}`);
    process.exit(1);
  }
}
const status = (code, pattern) => (e) => e.status === code && (!pattern || pattern.test(e.message));

await check('models.list and models.retrieve', async () => {
  const list = await client.models.list();
  assert.equal(list.data[0].id, 'tiny');
  assert.equal((await client.models.retrieve('tiny')).id, 'tiny');
  await assert.rejects(client.models.retrieve('gpt-9'), status(404, /not served here/));
});

await check('a prompt array gives one choice per prompt', async () => {
  const c = await client.completions.create({ model: 'tiny', prompt: ['one', 'two', 'three'], max_tokens: 3 });
  assert.deepEqual(c.choices.map((x) => x.index), [0, 1, 2]);
  assert.equal(c.usage.completion_tokens, 9);
});

await check('echo with logprobs scores the prompt', async () => {
  const c = await client.completions.create({ model: 'tiny', prompt: 'Hello there', max_tokens: 1, echo: true,
    logprobs: 1, temperature: 0 });
  const choice = c.choices[0];
  assert.ok(choice.text.startsWith('Hello there'), choice.text);
  assert.equal(choice.logprobs.token_logprobs[0], null);
  assert.equal(choice.logprobs.tokens.length, c.usage.prompt_tokens + 1);
  assert.ok(choice.logprobs.token_logprobs.slice(1).every((v) => v <= 0));
});

await check('chat logprobs and top_logprobs', async () => {
  const c = await client.chat.completions.create({ model: 'tiny', messages: hi, max_tokens: 4, seed: 1,
    logprobs: true, top_logprobs: 2 });
  const content = c.choices[0].logprobs.content;
  assert.equal(content.length, c.usage.completion_tokens);
  assert.ok(content.every((t) => t.top_logprobs.length === 2 && t.logprob <= 0));
  assert.equal(content.map((t) => t.token).join(''), c.choices[0].message.content);
});

await check('stream_options.include_usage', async () => {
  const stream = await client.chat.completions.create({ model: 'tiny', messages: hi, max_tokens: 4, stream: true,
    stream_options: { include_usage: true } });
  let usage = null;
  let text = '';
  for await (const chunk of stream) {
    if (chunk.choices.length === 0) {
      usage = chunk.usage;
    } else {
      text += chunk.choices[0].delta?.content ?? '';
    }
  }
  assert.equal(usage?.completion_tokens, 4);
  assert.ok(text.length > 0);
});

await check('response_format json_schema', async () => {
  const c = await client.chat.completions.create({ model: 'tiny', messages: hi, max_tokens: 60, response_format: {
    type: 'json_schema', json_schema: { name: 'verdict', strict: true, schema: { type: 'object',
      properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false } } } });
  assert.equal(typeof JSON.parse(c.choices[0].message.content).ok, 'boolean');
});

await check('response_format json_object', async () => {
  const c = await client.completions.create({ model: 'tiny', prompt: 'JSON:', max_tokens: 200, temperature: 0,
    response_format: { type: 'json_object' } });
  assert.equal(typeof JSON.parse(c.choices[0].text), 'object');
});

await check('temperature out of range is a 400', async () => {
  await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x', temperature: 2.5 }), status(400, /temperature/));
});

await check('what is not supported is a 400', async () => {
  await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x', best_of: 3 }), status(400, /best_of/));
  await assert.rejects(client.embeddings.create({ model: 'tiny', input: 'x' }), status(400, /embeddings/));
});

await check('embeddings of an embedding GGUF (base64, the client default)', async () => {
  const embedder = new OpenAI({ baseURL: process.env.OPENAI_EMBED_BASE_URL, apiKey: 'tether', maxRetries: 0 });
  const r = await embedder.embeddings.create({ model: process.env.OPENAI_EMBED_MODEL, input: ['hello', 'world'] });
  assert.deepEqual(r.data.map((d) => d.index), [0, 1]);
  for (const d of r.data) {
    assert.equal(d.embedding.length, 64);
    assert.ok(Math.abs(Math.hypot(...d.embedding) - 1) < 1e-4);
  }
  assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
});

console.log(`openai client ${process.env.OPENAI_CLIENT_VERSION ?? ''}: ${checks} checks passed`);
