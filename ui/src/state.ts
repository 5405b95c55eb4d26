// The app's single state object and the hooks views register to redraw themselves.
import { focusKey, restoreFocus } from './focus';
import type { CatalogEntry, Conversation, Device, DownloadProgress, HearthError, InstalledModel, Message, RemoteCheck, RemoteModelInfo, ModelState, SearchHit, SettingRange, Settings } from './ipc';

export type View = 'chat' | 'models' | 'settings';

export interface Streaming {
  conversationId: string;
  text: string;
  /** Shown as the user's turn while the reply streams (send and edit); null for regenerate. */
  userText: string | null;
  attachments: string[];
  error: string | null;
}

export interface DownloadView extends DownloadProgress {
  state: 'running' | 'paused' | 'failed';
  /** Why it failed, when this window saw it fail (a restart only knows that it did). */
  error?: HearthError | null;
}

export const state = {
  view: 'chat' as View,
  conversations: [] as Conversation[],
  nextCursor: null as string | null,
  activeId: null as string | null,
  messages: [] as Message[],
  contextTokens: 0,
  streaming: null as Streaming | null,
  editingId: null as string | null,
  searchQuery: '',
  searchHits: null as SearchHit[] | null,
  pendingDelete: new Set<string>(),
  settings: null as Settings | null,
  /** The backend's table of numeric settings' ranges (settings_ranges); empty until it answers. */
  settingsRanges: [] as SettingRange[],
  model: { state: 'none', modelId: null, name: null, contextSize: null, loadFraction: null, device: null, threads: null, error: null } as ModelState,
  /** What available_devices answered; null until it does (or when it failed: then nothing is hidden). */
  devices: null as Device[] | null,
  /** Whether a Hugging Face token is available (hf_token_status); null until it answers (or when it failed). */
  hfToken: null as boolean | null,
  loadFraction: 0,
  installed: [] as InstalledModel[],
  /** Models on other machines' servers (list_remote_models). */
  remote: [] as RemoteModelInfo[],
  /** Each remote model's last check, by name (check_remote_model). */
  remoteChecks: new Map<string, RemoteCheck | 'checking'>(),
  catalog: [] as CatalogEntry[],
  downloads: new Map<string, DownloadView>(),
  attachments: [] as string[],
};

type Region = 'sidebar' | 'main' | 'messages' | 'header' | 'composer';
const renderers = new Map<Region, () => void>();

export function onRender(region: Region, fn: () => void): void {
  renderers.set(region, fn);
}

export function render(...regions: Region[]): void {
  const key = focusKey(document.activeElement);
  for (const r of regions) renderers.get(r)?.();
  restoreFocus(key);
}
