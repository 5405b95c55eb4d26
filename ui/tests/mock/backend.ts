// An in-memory stand-in for the Rust shell, installed with mockIPC before the app loads.
// It follows IPC.md (branching tree of messages, paged conversations, channels) so the tests
// exercise the same contract the real shell implements. Tests drive streams through
// window.__hearthMock (token/done/error) and read back every command in `calls`.
// Failures have the shell's one shape: commands reject with {code, message, details} and streams
// end with a flattened {kind: 'error', code, message, details} event. Tests make the mock fail
// with fail() (any command's next call), error() (the reply stream), failDownload() (a running
// download), failNextLoad() (the next load_model) and busy() (the next send_message refused).
// available_devices answers the seed's `devices` (default ['cpu']); setDevices() changes it.
// hf_token_status answers the seed's `hfToken` (default false); set_hf_token sets it ('' clears it).
// Attachments: pick_attachment_files answers the seed's `pickFiles`; describe_document and
// document_text read the seed's `documents` (path -> text and kind, or the error the real backend
// would put on the card) and plan like the backend (whole when it fits the loaded context);
// summarize_documents stays open until the test calls summaryProgress()/summaryDone(), or
// cancel_summary ends it as cancelled.
// Remote models: the seed's `remote` list; check_remote_model answers the models of a URL in the
// seed's `remoteAnswers`, any other URL fails with `remote`. The local API server: set_local_server
// refuses a port in the seed's `takenPorts` with `port_in_use`; the key appears at the first switch-on.
import { mockIPC } from '@tauri-apps/api/mocks';
import type { AttachmentInfo, DocKind, DocumentCard, SummaryEvent, SummaryResult } from '../../src/generated/ipc';
import type { LocalServerSettings, LocalServerStatus, RemoteModelInfo, CatalogEntry, Conversation, Device, DownloadEvent, ErrorCode, ErrorDetails, GenerationStats, HearthErrorPayload, InstalledModel, LoadEvent, Message, ModelState, SearchHit, SettingRange, Settings, StreamEvent } from '../../src/ipc';
// The backend's ranges table; a Rust test (app_api) fails when this copy differs from it.
import rangesJson from './settings-ranges.json';

const RANGES = rangesJson as SettingRange[];

interface StoredMessage {
  id: string;
  conversationId: string;
  parentId: string | null;
  role: 'user' | 'assistant';
  text: string;
  state: Message['state'];
  stats: GenerationStats | null;
  attachments: string[];
  createdAt: string;
  error: HearthErrorPayload | null;
}

interface Seed {
  conversations?: { title: string; pinned?: boolean; messages?: [string, string][] }[];
  installed?: InstalledModel[];
  catalog?: CatalogEntry[];
  loaded?: string | null;
  /** The shell is loading this installed model when the window opens (the last-used one). */
  loadingAtStart?: string;
  settings?: Partial<Settings>;
  pickResult?: string | null;
  /** What available_devices answers (default: the CPU only). */
  devices?: Device[];
  /** Whether a Hugging Face token is available at start (default: none). */
  hfToken?: boolean;
  /** What pick_attachment_files answers. */
  pickFiles?: string[];
  /** Documents on "disk": their text and kind, or the error reading them gives. */
  documents?: Record<string, { text?: string; kind?: DocKind; sizeBytes?: number; error?: HearthErrorPayload }>;
  /** The loaded model's last measured prompt speed (tokens/s), for the plan's time; none by default. */
  promptSpeed?: number;
  /** Remote models at start. */
  remote?: RemoteModelInfo[];
  /** Server URL -> the model ids it lists; a URL not here does not answer. */
  remoteAnswers?: Record<string, string[]>;
  /** Ports another program holds (set_local_server on them fails with port_in_use). */
  takenPorts?: number[];
  /** The local API server's stored settings at start (on: it runs, unless its port is taken). */
  server?: Partial<LocalServerSettings>;
}

interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

const SETTINGS_KEY = 'hearth-mock-settings';
const DEFAULT_SETTINGS: Settings = {
  systemPrompt: '', temperature: 0.7, topP: 0.95, topK: 40, minP: 0.05, repeatPenalty: 1.1, seed: null,
  contextSize: 4096, threads: null, device: 'auto', theme: 'light', language: 'en', panScan: false,
};

let nextId = 1;
const newId = (p: string) => `${p}${nextId++}`;
let clock = Date.UTC(2026, 10, 27, 9, 0, 0);
const now = () => new Date((clock += 1000)).toISOString();

const conversations = new Map<string, Conversation>();
const messages = new Map<string, StoredMessage>();
/** parent key -> selected child id; parent key is the parent id or "root:<conversation>". */
const selected = new Map<string, string>();
let installed: InstalledModel[] = [];
let catalog: CatalogEntry[] = [];
let model: ModelState = { state: 'none', modelId: null, name: null, contextSize: null, loadFraction: null, device: null, threads: null, readsImages: false, error: null };
/** What available_devices answers (setDevices changes it). */
let devices: Device[] = ['cpu'];
/** Whether a Hugging Face token is stored (hf_token_status); the token itself is kept nowhere. */
let hasToken = false;
/** A ready model runs where the settings and this build allow: a GPU unless 'cpu' is chosen, else the CPU. */
function readyOn(): Pick<ModelState, 'device' | 'threads'> {
  const s = loadSettings();
  const gpu = devices.find((d) => d !== 'cpu');
  return { device: s.device !== 'cpu' && gpu ? gpu : 'cpu', threads: s.threads ?? 2 };
}
let remoteModels: RemoteModelInfo[] = [];
let remoteAnswers: Record<string, string[]> = {};
let takenPorts: number[] = [];
let server: LocalServerSettings = { enabled: false, port: 11435, store: false, requireKey: false };
let serverRunning = false;
let serverError: HearthErrorPayload | null = null;
let serverKey: string | null = null;
function serverStatus(): LocalServerStatus {
  return { settings: { ...server }, url: serverRunning ? `http://127.0.0.1:${server.port}/v1` : null, apiKey: serverKey, error: server.enabled ? serverError : null };
}
function portInUse(port: number): HearthErrorPayload {
  return failure('port_in_use', `127.0.0.1:${port} is in use by another program: choose another port`, { path: `127.0.0.1:${port}` });
}
let pickResult: string | null = null;
let pickFiles: string[] = [];
let documents: NonNullable<Seed['documents']> = {};
let promptSpeed: number | null = null;
/** Pasted images saved so far (their base64). */
const pasted: string[] = [];
/** A 1x1 PNG: what the thumbnail commands answer. */
const THUMB = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
interface ActiveSummary { paths: string[]; channelId: number; index: number; resolve: (r: SummaryResult) => void }
let summary: ActiveSummary | null = null;
const baseName = (p: string) => p.split(/[\\/]/).pop() || p;
const isImage = (p: string) => /\.(png|jpe?g|webp|gif|bmp)$/i.test(p);

function describe(path: string): DocumentCard {
  const d = documents[path];
  const card: DocumentCard = { path, name: baseName(path), sizeBytes: d?.sizeBytes ?? 0, kind: null, chars: null, tokens: null, model: model.state, plan: null, error: null };
  if (!d) return { ...card, error: failure('not_found', `cannot read ${path}: No such file or directory`, { path }) };
  if (d.error) return { ...card, error: d.error };
  const text = d.text ?? '';
  card.kind = d.kind ?? 'text';
  card.chars = [...text].length;
  if (!d.sizeBytes) card.sizeBytes = new TextEncoder().encode(text).length;
  if (model.state !== 'ready') return card;
  // As documents::plan, roughly: whole when the text, the instructions and the reply fit.
  const tokens = Math.ceil(card.chars / 4);
  const context = model.contextSize ?? 4096;
  const whole = tokens + 100 + 512 <= context;
  const chunks = whole ? 1 : Math.ceil(tokens / (context - 100 - 512));
  const promptTokens = tokens + 100 * chunks + (whole ? 0 : chunks * 140);
  const kvBytes = context * 18 * 2 * 256 * 2;
  card.tokens = tokens;
  card.plan = { mode: whole ? 'whole' : 'map_reduce', context, chunks, reduceLevels: whole ? 0 : 1, promptTokens, seconds: promptSpeed ? promptTokens / promptSpeed : null, kvBytes, memoryBytes: 253_000_000 + kvBytes + 268_435_456, memoryVerdict: 'fits' };
  return card;
}

function attachmentItems(m: { id: string; attachments: string[] }): AttachmentInfo[] {
  return m.attachments.map((p, i) => ({ id: `${m.id}a${i}`, name: baseName(p), kind: isImage(p) ? 'image' : 'document', sizeBytes: 1000 }));
}
const calls: Call[] = [];
const failNext = new Map<string, HearthErrorPayload>();
/** The next load_model fails this way: progress to half, an error event, then the rejection. */
let loadFailure: HearthErrorPayload | null = null;

interface ActiveStream { conversationId: string; assistantId: string; channelId: number; index: number }
let stream: ActiveStream | null = null;
let holdLoads = false;
/** How long a background reload after set_settings takes. */
let reloadMs = 150;
let releaseLoad: (() => void) | null = null;
const downloads = new Map<string, { channelId: number; index: number }>();

function loadSettings(): Settings {
  const raw = localStorage.getItem(SETTINGS_KEY);
  return raw ? { ...DEFAULT_SETTINGS, ...JSON.parse(raw) } : { ...DEFAULT_SETTINGS };
}
function storeSettings(s: Settings): void {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(s));
}

function parentKey(m: { parentId: string | null; conversationId: string }): string {
  return m.parentId ?? `root:${m.conversationId}`;
}
function children(key: string): StoredMessage[] {
  return [...messages.values()].filter((m) => parentKey(m) === key);
}
function activePath(conversationId: string): StoredMessage[] {
  const out: StoredMessage[] = [];
  let key = `root:${conversationId}`;
  for (;;) {
    const kids = children(key);
    if (kids.length === 0) return out;
    const pick = kids.find((k) => k.id === selected.get(key)) ?? kids[kids.length - 1];
    out.push(pick);
    key = pick.id;
  }
}
function toMessage(m: StoredMessage): Message {
  const sibs = children(parentKey(m));
  return { id: m.id, conversationId: m.conversationId, role: m.role, text: m.text, state: m.state, stats: m.stats, attachments: m.attachments.map(baseName), attachmentItems: attachmentItems(m), createdAt: m.createdAt, error: m.error, branch: { index: sibs.indexOf(m), count: sibs.length, siblingIds: sibs.map((s) => s.id) } };
}
const tokensOf = (s: string) => Math.ceil(s.length / 4);
function messageList(conversationId: string) {
  const path = activePath(conversationId);
  // As the runtime: the loaded model counts the tokens, so there are none without one.
  const contextTokens = model.state === 'ready' ? path.reduce((n, m) => n + tokensOf(m.text), 0) : 0;
  return { messages: path.map(toMessage), contextTokens };
}
function addMessage(conversationId: string, parentId: string | null, role: 'user' | 'assistant', text: string, st: Message['state'] = 'complete', attachments: string[] = []): StoredMessage {
  const m: StoredMessage = { id: newId('m'), conversationId, parentId, role, text, state: st, stats: role === 'assistant' && st === 'complete' ? { tokens: tokensOf(text), tokensPerS: 42.5, stopReason: 'eos' } : null, attachments, createdAt: now(), error: null };
  messages.set(m.id, m);
  selected.set(parentKey(m), m.id);
  const c = conversations.get(conversationId);
  if (c) c.updatedAt = m.createdAt;
  return m;
}
function createConv(title: string, pinned = false): Conversation {
  const ts = now();
  const c: Conversation = { id: newId('c'), title, pinned, archived: false, createdAt: ts, updatedAt: ts };
  conversations.set(c.id, c);
  return c;
}

function failure(code: ErrorCode, message: string, details: ErrorDetails = {}): HearthErrorPayload {
  return { code, message, details };
}

function err(code: ErrorCode, message: string, details: ErrorDetails = {}): never {
  throw failure(code, message, details);
}

function channelId(arg: unknown): number {
  const id = (arg as { id?: number } | undefined)?.id;
  if (typeof id !== 'number') err('internal', 'expected a Channel');
  return id;
}

function send(id: number, index: number, message: unknown): void {
  window.__TAURI_INTERNALS__.runCallback(id, { index, message });
}

function startStream(conversationId: string, parentId: string, onEvent: unknown): string {
  const a = addMessage(conversationId, parentId, 'assistant', '', 'streaming');
  stream = { conversationId, assistantId: a.id, channelId: channelId(onEvent), index: 0 };
  return a.id;
}

function finish(stopReason: GenerationStats['stopReason'], tokensPerS = 31.4): void {
  if (!stream) return;
  const m = messages.get(stream.assistantId)!;
  const stats: GenerationStats = { tokens: tokensOf(m.text), tokensPerS, stopReason, promptTokens: 12 };
  m.state = 'complete';
  m.stats = stats;
  const s = stream;
  stream = null;
  send(s.channelId, s.index++, { kind: 'done', stats } satisfies StreamEvent);
}

function sanitizeArgs(args: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args ?? {})) out[k] = v && typeof v === 'object' && 'id' in (v as object) && typeof (v as { id: unknown }).id === 'number' && !Array.isArray(v) ? '<channel>' : v;
  return out;
}

function handle(cmd: string, args: Record<string, unknown>): unknown {
  const failure = failNext.get(cmd);
  if (failure) {
    failNext.delete(cmd);
    throw failure;
  }
  const str = (k: string) => String(args[k] ?? '');
  switch (cmd) {
    case 'get_settings':
      return loadSettings();
    case 'settings_ranges':
      return RANGES;
    case 'set_settings': {
      const patch = (args.patch ?? {}) as Partial<Settings>;
      // As the backend validates: every numeric field against its row, the message naming it.
      for (const r of RANGES) {
        if (!(r.field in patch)) continue;
        const v = patch[r.field];
        if (v === null && r.nullable) continue;
        if (typeof v !== 'number' || (r.integer && !Number.isInteger(v))) err('invalid_setting', `${r.field} has the wrong type of value`, { field: r.field });
        if (!(Number.isFinite(v) && v >= r.min && v <= r.max)) err('invalid_setting', `${r.field} must be between ${r.min} and ${r.max}`, { field: r.field, min: r.min, max: r.max });
      }
      const before = loadSettings();
      const s = { ...before, ...patch };
      storeSettings(s);
      // As the shell does: threads apply at once; a new device or context size reloads the model
      // in the background (current_model says loading, then ready after reloadMs).
      if (model.state === 'ready' && (s.device !== before.device || s.contextSize !== before.contextSize)) {
        const reloading = { ...model };
        model = { ...model, state: 'loading', contextSize: null, loadFraction: 0, device: null, threads: null };
        setTimeout(() => {
          if (model.state === 'loading' && model.modelId === reloading.modelId) model = { ...reloading, contextSize: loadSettings().contextSize, ...readyOn() };
        }, reloadMs);
      } else if (model.state === 'ready' && s.threads !== before.threads) {
        model = { ...model, ...readyOn() };
      }
      return s;
    }
    case 'list_conversations': {
      const all = [...conversations.values()].filter((c) => c.archived === Boolean(args.archived)).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
      const start = args.cursor ? Number(args.cursor) : 0;
      const limit = Number(args.limit ?? 50);
      const items = all.slice(start, start + limit);
      return { items, nextCursor: start + limit < all.length ? String(start + limit) : null };
    }
    case 'create_conversation':
      // A copy, as the real IPC's JSON is: the window's copy does not change with the store's.
      return { ...createConv((args.title as string | null) ?? '') };
    case 'rename_conversation': {
      const c = conversations.get(str('id')) ?? err('not_found', 'no such conversation', { field: 'conversation' });
      if (str('title').trim() === '') err('invalid_title', 'title must not be empty');
      c.title = str('title');
      return c;
    }
    case 'pin_conversation': {
      const c = conversations.get(str('id')) ?? err('not_found', 'no such conversation', { field: 'conversation' });
      c.pinned = Boolean(args.pinned);
      return c;
    }
    case 'archive_conversation': {
      const c = conversations.get(str('id')) ?? err('not_found', 'no such conversation', { field: 'conversation' });
      c.archived = Boolean(args.archived);
      return c;
    }
    case 'delete_conversation':
      if (!conversations.delete(str('id'))) err('not_found', 'no such conversation', { field: 'conversation' });
      for (const [id, m] of messages) if (m.conversationId === str('id')) messages.delete(id);
      return null;
    case 'search_conversations': {
      const q = str('query').toLowerCase();
      const hits: SearchHit[] = [];
      for (const m of messages.values()) {
        const i = m.text.toLowerCase().indexOf(q);
        if (q && i >= 0) {
          const from = Math.max(0, i - 20);
          const snippet = `${from > 0 ? '…' : ''}${m.text.slice(from, i)}\u0002${m.text.slice(i, i + q.length)}\u0003${m.text.slice(i + q.length, i + q.length + 30)}`;
          hits.push({ conversationId: m.conversationId, messageId: m.id, title: conversations.get(m.conversationId)?.title ?? '', snippet });
        }
      }
      return hits.slice(0, Number(args.limit ?? 20));
    }
    case 'list_messages':
      if (!conversations.has(str('conversationId'))) err('not_found', 'no such conversation', { field: 'conversation' });
      return messageList(str('conversationId'));
    case 'send_message': {
      const cid = str('conversationId');
      if (!conversations.has(cid)) err('not_found', 'no such conversation', { field: 'conversation' });
      if (model.state !== 'ready') err('no_model', 'no model is loaded');
      if (stream) err('busy', 'a reply is being generated or a model is loading');
      const path = activePath(cid);
      const u = addMessage(cid, path.length ? path[path.length - 1].id : null, 'user', str('text'), 'complete', (args.attachments as string[]) ?? []);
      const c = conversations.get(cid)!;
      if (!c.title) c.title = str('text').slice(0, 40);
      return { userMessageId: u.id, assistantMessageId: startStream(cid, u.id, args.onEvent) };
    }
    case 'regenerate': {
      const a = messages.get(str('messageId')) ?? err('not_found', 'no such message', { field: 'message' });
      if (a.role !== 'assistant' || !a.parentId) err('invalid_message', 'only a reply can be regenerated');
      return { userMessageId: null, assistantMessageId: startStream(a.conversationId, a.parentId, args.onEvent) };
    }
    case 'edit_message': {
      const u = messages.get(str('messageId')) ?? err('not_found', 'no such message', { field: 'message' });
      if (u.role !== 'user') err('invalid_message', 'only your own messages can be edited');
      const edited = addMessage(u.conversationId, u.parentId, 'user', str('text'), 'complete', u.attachments);
      return { userMessageId: edited.id, assistantMessageId: startStream(u.conversationId, edited.id, args.onEvent) };
    }
    case 'select_branch': {
      const m = messages.get(str('messageId')) ?? err('not_found', 'no such message', { field: 'message' });
      selected.set(parentKey(m), m.id);
      return messageList(m.conversationId);
    }
    case 'stop_generation':
      finish('stopped');
      return null;
    case 'model_catalog':
      return catalog.map((c) => ({ ...c, installed: installed.some((m) => m.id === c.id) }));
    case 'list_installed_models':
      return installed;
    case 'current_model':
      return model;
    case 'available_devices':
      return devices;
    case 'hf_token_status':
      return hasToken;
    case 'set_hf_token':
      // As the shell does: a blank token forgets the stored one; the answer is the status afterwards.
      if (typeof args.token !== 'string') err('internal', 'expected a token string');
      hasToken = args.token.trim() !== '';
      return hasToken;
    case 'download_model':
    case 'resume_download': {
      const c = catalog.find((x) => x.id === str('modelId')) ?? err('not_found', `no catalog entry ${str('modelId')}`, { field: 'model', model: str('modelId') });
      if (downloads.has(c.id)) err('download_running', `${c.id} is already downloading`, { model: c.id });
      downloads.set(c.id, { channelId: channelId(args.onProgress), index: 0 });
      return null;
    }
    case 'cancel_download': {
      const d = downloads.get(str('modelId')) ?? err('not_found', `no download of ${str('modelId')} is running`, { field: 'download', model: str('modelId') });
      send(d.channelId, d.index++, { kind: 'cancelled' });
      downloads.delete(str('modelId'));
      return null;
    }
    case 'import_model': {
      const path = str('path');
      if (!path.toLowerCase().endsWith('.gguf')) err('not_gguf', `${path}: not a GGUF file`, { path });
      if (path.includes('missing')) err('not_found', `no file at ${path}`, { field: 'file', path });
      const name = path.split(/[\\/]/).pop()!.replace(/\.gguf$/i, '');
      const m: InstalledModel = { id: newId('model'), name, path, sizeBytes: 253_000_000, quant: 'Q4_K_M', contextLength: 32768 };
      installed.push(m);
      return m;
    }
    case 'pick_model_file':
      return pickResult;
    case 'remove_model':
      installed = installed.filter((m) => m.id !== str('modelId'));
      return null;
    case 'list_remote_models':
      return remoteModels;
    case 'add_remote_model': {
      const name = str('name').trim();
      if (!/^[A-Za-z0-9._-]{1,128}$/.test(name)) err('invalid_id', `${JSON.stringify(name)} is not a valid name for a remote model`);
      if (!/^https?:\/\/[^/]+/.test(str('url').trim())) err('invalid_url', `${JSON.stringify(str('url'))} is not a usable server address: not a URL`, { path: str('url') });
      if (remoteModels.some((r) => r.name === name) || installed.some((m) => m.id === name)) err('already_installed', `a model named ${JSON.stringify(name)} exists already`);
      const r: RemoteModelInfo = { name, url: str('url').trim().replace(/\/+$/, '').replace(/\/v1$/, ''), model: (args.model as string | null) || null, hasKey: Boolean(args.apiKey), addedAt: now() };
      remoteModels.push(r);
      return r;
    }
    case 'remove_remote_model': {
      const name = str('name');
      if (!remoteModels.some((r) => r.name === name)) err('not_found', `no remote model named ${name}`);
      if (model.modelId === name && model.remoteUrl) err('model_in_use', `${name} is the model in use`, { model: name });
      remoteModels = remoteModels.filter((r) => r.name !== name);
      return null;
    }
    case 'check_remote_model': {
      const r = remoteModels.find((x) => x.name === str('name')) ?? err('not_found', `no remote model named ${str('name')}`);
      const models = remoteAnswers[r.url];
      if (models) return { name: r.name, models, error: null };
      return { name: r.name, models: [], error: { code: 'remote', message: `cannot reach ${r.url}: connection refused`, details: { path: r.url, model: r.name, field: 'check' } } };
    }
    case 'local_server_status':
      return serverStatus();
    case 'set_local_server': {
      const next = args.settings as LocalServerSettings;
      if (next.enabled) {
        if (takenPorts.includes(next.port)) throw portInUse(next.port);
        serverKey ??= 'hearth-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
        serverRunning = true;
      } else {
        serverRunning = false;
      }
      serverError = null;
      server = { ...next };
      return serverStatus();
    }
    case 'load_model': {
      const r = remoteModels.find((x) => x.name === str('modelId'));
      if (r) {
        const id = channelId(args.onProgress);
        send(id, 0, { kind: 'done' } satisfies LoadEvent);
        model = { state: 'ready', modelId: r.name, name: r.name, contextSize: 8192, loadFraction: null, device: null, threads: null, readsImages: false, error: null, remoteUrl: r.url };
        return model;
      }
      const m = installed.find((x) => x.id === str('modelId')) ?? err('not_found', `model ${str('modelId')} is not installed`, { field: 'model', model: str('modelId') });
      const id = channelId(args.onProgress);
      model = { state: 'loading', modelId: m.id, name: m.name, contextSize: null, loadFraction: 0, device: null, threads: null, readsImages: false, error: null };
      send(id, 0, { kind: 'progress', fraction: 0.5 } satisfies LoadEvent);
      if (loadFailure) {
        const f = loadFailure;
        loadFailure = null;
        model = { state: 'error', modelId: m.id, name: m.name, contextSize: null, loadFraction: null, device: null, threads: null, readsImages: false, error: f };
        send(id, 1, { kind: 'error', ...f } satisfies LoadEvent);
        throw f;
      }
      const finishLoad = () => {
        send(id, 1, { kind: 'progress', fraction: 1 });
        send(id, 2, { kind: 'done' });
        model = { state: 'ready', modelId: m.id, name: m.name, contextSize: loadSettings().contextSize, loadFraction: null, ...readyOn(), readsImages: false, error: null };
        return model;
      };
      // With holdLoads set, the load stays half done until the test calls releaseLoad().
      if (holdLoads) return new Promise((resolve) => (releaseLoad = () => resolve(finishLoad())));
      return finishLoad();
    }
    case 'open_external':
      return null;
    case 'pick_attachment_files':
      return pickFiles;
    case 'save_pasted_image': {
      const b64 = str('dataBase64');
      if (!/^[A-Za-z0-9+/]+=*$/.test(b64)) err('attachment_unreadable', 'the pasted data is not base64');
      pasted.push(b64);
      return `/data/pasted/pasted-20261127-090000-${String(pasted.length).padStart(12, '0')}.png`;
    }
    case 'image_thumbnail':
      if (str('path').includes('broken')) err('attachment_unreadable', 'this file is not an image Hearth can read');
      return THUMB;
    case 'attachment_thumbnail':
      return THUMB;
    case 'describe_document':
      return describe(str('path'));
    case 'document_text': {
      const card = describe(str('path'));
      if (card.error) throw card.error;
      const text = documents[str('path')]?.text ?? '';
      return { kind: card.kind, text, chars: card.chars };
    }
    case 'attachment_text': {
      const m = [...messages.values()].find((x) => attachmentItems(x).some((a) => a.id === str('attachmentId')));
      const index = m ? attachmentItems(m).findIndex((a) => a.id === str('attachmentId')) : -1;
      if (!m || index < 0 || isImage(m.attachments[index])) err('not_found', `no attachment ${str('attachmentId')}`, { field: 'attachment' });
      const path = m.attachments[index];
      const text = documents[path]?.text ?? '';
      return { kind: documents[path]?.kind ?? 'text', text, chars: [...text].length };
    }
    case 'summarize_documents': {
      if (model.state !== 'ready') err('no_model', 'no model is loaded');
      if (stream || summary) err('busy', 'a reply is being generated or a model is loading');
      const paths = (args.paths as string[]) ?? [];
      for (const p of paths) {
        const card = describe(p);
        if (card.error) throw card.error;
      }
      const id = channelId(args.onEvent);
      return new Promise<SummaryResult>((resolve) => {
        summary = { paths, channelId: id, index: 0, resolve };
      });
    }
    case 'cancel_summary':
      if (summary) {
        const s = summary;
        summary = null;
        s.resolve({ conversationId: null, cancelled: true, summary: '', mode: 'whole', chunks: 1, seconds: 1 });
      }
      return null;
    default:
      err('internal', `mock has no command ${cmd}`);
  }
}

const control = {
  calls,
  callsOf: (cmd: string) => calls.filter((c) => c.cmd === cmd),
  configure(seed: Seed): void {
    if (seed.settings && localStorage.getItem(SETTINGS_KEY) === null) storeSettings({ ...DEFAULT_SETTINGS, ...seed.settings });
    installed = seed.installed ?? [];
    catalog = seed.catalog ?? [];
    pickResult = seed.pickResult ?? null;
    devices = seed.devices ? [...seed.devices] : ['cpu'];
    hasToken = seed.hfToken ?? false;
    pickFiles = seed.pickFiles ?? [];
    documents = seed.documents ?? {};
    promptSpeed = seed.promptSpeed ?? null;
    remoteModels = [...(seed.remote ?? [])];
    remoteAnswers = { ...(seed.remoteAnswers ?? {}) };
    takenPorts = [...(seed.takenPorts ?? [])];
    server = { ...server, ...(seed.server ?? {}) };
    if (server.enabled) {
      // As at the shell's start: back on, unless the port is taken (then the error waits in the status).
      serverKey = 'hearth-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
      serverRunning = !takenPorts.includes(server.port);
      serverError = serverRunning ? null : portInUse(server.port);
    }
    const loaded = installed.find((m) => m.id === seed.loaded);
    if (loaded) model = { state: 'ready', modelId: loaded.id, name: loaded.name, contextSize: loadSettings().contextSize, loadFraction: null, ...readyOn(), readsImages: false, error: null };
    const loading = installed.find((m) => m.id === seed.loadingAtStart);
    if (loading) model = { state: 'loading', modelId: loading.id, name: loading.name, contextSize: null, loadFraction: 0, device: null, threads: null, readsImages: false, error: null };
    for (const sc of seed.conversations ?? []) {
      const c = createConv(sc.title, sc.pinned);
      let parent: string | null = null;
      for (const [role, text] of (sc.messages ?? []).map(([u, a]) => [u, a])) {
        const u = addMessage(c.id, parent, 'user', role);
        const a = addMessage(c.id, u.id, 'assistant', text);
        parent = a.id;
      }
    }
  },
  /** Streams one token of the reply in progress. */
  token(text: string): void {
    if (!stream) throw new Error('no stream in progress');
    messages.get(stream.assistantId)!.text += text;
    send(stream.channelId, stream.index++, { kind: 'token', text } satisfies StreamEvent);
  },
  done(tokensPerS?: number): void {
    finish('eos', tokensPerS);
  },
  /** Ends the reply in progress with an error: the message is stored failed, then the event is sent. */
  error(message: string, code: ErrorCode = 'engine', details: ErrorDetails = {}): void {
    if (!stream) return;
    const m = messages.get(stream.assistantId)!;
    m.state = 'error';
    m.error = failure(code, message, details);
    send(stream.channelId, stream.index++, { kind: 'error', ...m.error } satisfies StreamEvent);
    stream = null;
  },
  streaming: () => stream !== null,
  summarizing: () => summary !== null,
  pastedImages: () => [...pasted],
  /** Sends a running summary's progress. */
  summaryProgress(tokensRead: number, tokensTotal: number, tokensPerS: number, secondsLeft: number | null): void {
    if (!summary) throw new Error('no summary running');
    const ev: SummaryEvent = { kind: 'progress', tokensRead, tokensTotal, stepsDone: 0, stepsTotal: 0, tokensPerS, secondsLeft };
    send(summary.channelId, summary.index++, ev);
  },
  /** Ends the running summary: saved as a new conversation (the documents on its user message), as summarize::save does. */
  summaryDone(text: string): string {
    if (!summary) throw new Error('no summary running');
    const s = summary;
    summary = null;
    const names = s.paths.map(baseName).join(', ');
    const c = createConv(`Summary: ${names}`);
    const u = addMessage(c.id, null, 'user', `Summarize ${names}.`, 'complete', s.paths);
    addMessage(c.id, u.id, 'assistant', text);
    s.resolve({ conversationId: c.id, cancelled: false, summary: text, mode: 'whole', chunks: 1, seconds: 2 });
    return c.id;
  },
  hasToken: () => hasToken,
  /** Another program takes (or frees) a port. */
  takePort(port: number, taken = true): void {
    takenPorts = taken ? [...takenPorts, port] : takenPorts.filter((p) => p !== port);
  },
  serverRunning: () => serverRunning,
  /** What available_devices answers from now on (the app asks at start: set it in an init script or reload). */
  setDevices(list: Device[]): void {
    devices = [...list];
    if (model.state === 'ready') model = { ...model, ...readyOn() };
  },
  /** How long the background reload after a device or context change takes (ms). */
  setReloadMs(ms: number): void {
    reloadMs = ms;
  },
  holdLoads(on: boolean): void {
    holdLoads = on;
  },
  /** Moves the shell's own (start-up) load along: current_model reports this fraction. */
  startupLoadProgress(fraction: number): void {
    if (model.state !== 'loading') throw new Error('no load in progress');
    model = { ...model, loadFraction: fraction };
  },
  /** Ends the shell's own (start-up) load: current_model then reports the model ready. */
  finishStartupLoad(): void {
    if (model.state !== 'loading' || !model.modelId) throw new Error('no load in progress');
    model = { ...model, state: 'ready', contextSize: loadSettings().contextSize, loadFraction: null, ...readyOn() };
  },
  releaseLoad(): void {
    releaseLoad?.();
    releaseLoad = null;
  },
  downloadProgress(modelId: string, bytes: number, total: number, rate: number, eta: number | null): void {
    const d = downloads.get(modelId);
    if (!d) throw new Error(`no download for ${modelId}`);
    send(d.channelId, d.index++, { kind: 'progress', bytes, total, rate, eta } satisfies DownloadEvent);
  },
  downloadDone(modelId: string): void {
    const d = downloads.get(modelId);
    const c = catalog.find((x) => x.id === modelId);
    if (!d || !c) throw new Error(`no download for ${modelId}`);
    const m: InstalledModel = { id: c.id, name: c.name, path: `/models/${c.id}.gguf`, sizeBytes: c.sizeBytes, quant: c.quant, contextLength: 32768 };
    installed.push(m);
    downloads.delete(modelId);
    send(d.channelId, d.index++, { kind: 'done', model: m });
  },
  /** Ends a running download with an error event (e.g. `gated` with details.model, `network`). */
  failDownload(modelId: string, code: ErrorCode, message: string, details: ErrorDetails = {}): void {
    const d = downloads.get(modelId);
    if (!d) throw new Error(`no download for ${modelId}`);
    downloads.delete(modelId);
    send(d.channelId, d.index++, { kind: 'error', ...failure(code, message, details) } satisfies DownloadEvent);
  },
  /** Makes the next load_model fail (e.g. `not_gguf` with details.path, `out_of_memory` with needed/available). */
  failNextLoad(code: ErrorCode, message: string, details: ErrorDetails = {}): void {
    loadFailure = failure(code, message, details);
  },
  /** The next call of `cmd` rejects with this error. */
  fail(cmd: string, code: ErrorCode, message: string, details: ErrorDetails = {}): void {
    failNext.set(cmd, failure(code, message, details));
  },
  /** The next send_message is refused with `busy`, as while another reply streams or a model loads. */
  busy(cmd = 'send_message'): void {
    failNext.set(cmd, failure('busy', 'a reply is being generated or a model is loading'));
  },
  messageTexts: (conversationId: string) => activePath(conversationId).map((m) => m.text),
  conversationIds: () => [...conversations.keys()],
};

declare global {
  interface Window {
    __hearthMock: typeof control;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    __TAURI_INTERNALS__: any;
  }
}

mockIPC(
  (cmd, args) => {
    calls.push({ cmd, args: sanitizeArgs(args as Record<string, unknown>) });
    return handle(cmd, (args ?? {}) as Record<string, unknown>);
  },
  { shouldMockEvents: true },
);
window.__hearthMock = control;
