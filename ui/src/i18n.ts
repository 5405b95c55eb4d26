// Every user-visible string goes through this table so the language setting can switch live.
import type { Language } from './ipc';

const en = {
  'app.name': 'Hearth',
  'nav.models': 'Models',
  'nav.settings': 'Settings',
  'nav.chats': 'Chats',
  'sidebar.label': 'Conversations',
  'sidebar.new': 'New chat',
  'sidebar.search': 'Search chats',
  'sidebar.searchPlaceholder': 'Search chats (Ctrl+K)',
  'sidebar.pinned': 'Pinned',
  'sidebar.recent': 'Recent',
  'sidebar.empty': 'No conversations yet',
  'sidebar.noResults': 'No matches',
  'sidebar.results': 'Search results',
  'sidebar.more': 'Load more',
  'conv.untitled': 'New chat',
  'conv.rename': 'Rename',
  'conv.renameLabel': 'New title for {title}',
  'conv.pin': 'Pin',
  'conv.unpin': 'Unpin',
  'conv.delete': 'Delete',
  'conv.actions': 'Actions for {title}',
  'conv.deleted': 'Deleted “{title}”',
  'toast.undo': 'Undo',
  'toast.dismiss': 'Dismiss',
  'chat.label': 'Chat',
  'chat.empty': 'Ask anything. Everything stays on this computer.',
  'chat.emptyTitle': 'How can I help?',
  'chat.you': 'You',
  'chat.assistant': 'Hearth',
  'chat.copy': 'Copy message',
  'chat.copied': 'Copied',
  'chat.copyCode': 'Copy code',
  'chat.regenerate': 'Regenerate',
  'chat.edit': 'Edit',
  'chat.editSave': 'Save and send',
  'chat.editCancel': 'Cancel',
  'chat.editLabel': 'Edit message',
  'chat.prevBranch': 'Previous version',
  'chat.nextBranch': 'Next version',
  'chat.branch': 'Version {index} of {count}',
  'chat.stats': '{tokens} tokens · {rate} tok/s',
  'chat.stopped': 'Stopped',
  'chat.interrupted': 'Interrupted',
  'chat.contextFull': 'Context full',
  'chat.maxTokens': 'Length limit reached',
  'chat.error': 'Generation failed: {message}',
  'chat.generating': 'Generating…',
  'chat.messages': 'Messages',
  'composer.label': 'Message',
  'composer.placeholder': 'Message Hearth — Enter to send, Shift+Enter for a new line',
  'composer.send': 'Send',
  'composer.stop': 'Stop (Esc)',
  'composer.drop': 'Drop files to attach',
  'composer.attachments': 'Attachments',
  'composer.removeAttachment': 'Remove {name}',
  'composer.noModel': 'Load a model to start chatting',
  'context.label': 'Context used: {used} of {total} tokens',
  'context.short': '{percent}% context',
  'picker.label': 'Model',
  'picker.none': 'No model loaded',
  'picker.choose': 'Choose a model…',
  'picker.loading': 'Loading {name}… {percent}%',
  'picker.ready': '{name}',
  'picker.error': 'Failed to load',
  'firstrun.title': 'Welcome to Hearth',
  'firstrun.body': 'Hearth runs language models entirely on your computer. Nothing you type leaves this machine. To begin, download a model or import a GGUF file you already have.',
  'firstrun.cta': 'Get a model',
  'models.title': 'Models',
  'models.installed': 'Installed',
  'models.noneInstalled': 'No models installed yet.',
  'models.catalog': 'Catalog',
  'models.import': 'Import a local GGUF',
  'models.importPath': 'Path to a .gguf file',
  'models.importButton': 'Import',
  'models.browse': 'Browse…',
  'models.dropHere': 'or drop a .gguf file here',
  'models.imported': 'Imported {name}',
  'models.download': 'Download',
  'models.cancel': 'Cancel',
  'models.resume': 'Resume',
  'models.retry': 'Retry',
  'models.load': 'Load',
  'models.loaded': 'Loaded',
  'models.remove': 'Remove',
  'models.removeConfirm': 'Remove {name} from disk?',
  'models.installedBadge': 'Installed',
  'models.size': 'Download {size}',
  'models.needs': 'Needs {required} of {available} free memory',
  'models.fit.fits': 'Fits',
  'models.fit.tight': 'Tight fit',
  'models.fit.too_big': 'Too big',
  'models.progress': '{done} of {total} · {rate}/s · {eta} left',
  'models.progressLabel': 'Download progress for {name}',
  'models.paused': 'Paused at {done} of {total}',
  'models.failed': 'Download failed',
  'models.emptyPath': 'Enter a path to a .gguf file',
  'models.notGguf': 'Only .gguf files can be imported',
  'models.context': '{n} context',
  'models.desc': '{params} parameters, up to {context} tokens of context',
  'settings.title': 'Settings',
  'settings.generation': 'Generation',
  'settings.appearance': 'Appearance',
  'settings.performance': 'Performance',
  'settings.systemPrompt': 'System prompt',
  'settings.temperature': 'Temperature',
  'settings.topP': 'Top P',
  'settings.topK': 'Top K',
  'settings.minP': 'Min P',
  'settings.repeatPenalty': 'Repeat penalty',
  'settings.seed': 'Seed (empty = random)',
  'settings.contextSize': 'Context size (tokens)',
  'settings.threads': 'Threads (empty = automatic)',
  'settings.device': 'Device',
  'settings.device.auto': 'Automatic',
  'settings.device.cpu': 'CPU',
  'settings.device.gpu': 'GPU',
  'settings.theme': 'Theme',
  'settings.theme.light': 'Light',
  'settings.theme.dark': 'Dark',
  'settings.theme.system': 'System',
  'settings.language': 'Language',
  'settings.saved': 'Saved',
  'settings.invalid': 'Invalid value',
  'error.title': 'Error ({code})',
  'link.open': 'Open link in your browser: {url}',
  'shortcuts.hint': 'Enter send · Shift+Enter new line · Esc stop · Ctrl+N new chat · Ctrl+K search',
  'units.B': 'B',
  'units.KB': 'KB',
  'units.MB': 'MB',
  'units.GB': 'GB',
  'time.s': '{n}s',
  'time.m': '{m}m {s}s',
  'time.h': '{h}h {m}m',
  'time.unknown': '—',
} as const;

export type Key = keyof typeof en;

const ko: Record<Key, string> = {
  'app.name': 'Hearth',
  'nav.models': '모델',
  'nav.settings': '설정',
  'nav.chats': '대화',
  'sidebar.label': '대화 목록',
  'sidebar.new': '새 대화',
  'sidebar.search': '대화 검색',
  'sidebar.searchPlaceholder': '대화 검색 (Ctrl+K)',
  'sidebar.pinned': '고정됨',
  'sidebar.recent': '최근',
  'sidebar.empty': '아직 대화가 없습니다',
  'sidebar.noResults': '일치하는 항목 없음',
  'sidebar.results': '검색 결과',
  'sidebar.more': '더 보기',
  'conv.untitled': '새 대화',
  'conv.rename': '이름 바꾸기',
  'conv.renameLabel': '{title}의 새 제목',
  'conv.pin': '고정',
  'conv.unpin': '고정 해제',
  'conv.delete': '삭제',
  'conv.actions': '{title} 작업',
  'conv.deleted': '“{title}” 삭제됨',
  'toast.undo': '실행 취소',
  'toast.dismiss': '닫기',
  'chat.label': '대화',
  'chat.empty': '무엇이든 물어보세요. 모든 내용은 이 컴퓨터에만 남습니다.',
  'chat.emptyTitle': '무엇을 도와드릴까요?',
  'chat.you': '나',
  'chat.assistant': 'Hearth',
  'chat.copy': '메시지 복사',
  'chat.copied': '복사됨',
  'chat.copyCode': '코드 복사',
  'chat.regenerate': '다시 생성',
  'chat.edit': '편집',
  'chat.editSave': '저장 후 보내기',
  'chat.editCancel': '취소',
  'chat.editLabel': '메시지 편집',
  'chat.prevBranch': '이전 버전',
  'chat.nextBranch': '다음 버전',
  'chat.branch': '{count}개 중 {index}번째 버전',
  'chat.stats': '토큰 {tokens}개 · 초당 {rate}토큰',
  'chat.stopped': '중지됨',
  'chat.interrupted': '중단됨',
  'chat.contextFull': '컨텍스트 가득 참',
  'chat.maxTokens': '길이 제한 도달',
  'chat.error': '생성 실패: {message}',
  'chat.generating': '생성 중…',
  'chat.messages': '메시지',
  'composer.label': '메시지',
  'composer.placeholder': 'Hearth에게 메시지 보내기 — Enter 전송, Shift+Enter 줄바꿈',
  'composer.send': '보내기',
  'composer.stop': '중지 (Esc)',
  'composer.drop': '파일을 놓아 첨부하기',
  'composer.attachments': '첨부 파일',
  'composer.removeAttachment': '{name} 제거',
  'composer.noModel': '대화를 시작하려면 모델을 불러오세요',
  'context.label': '컨텍스트 사용량: {total}토큰 중 {used}토큰',
  'context.short': '컨텍스트 {percent}%',
  'picker.label': '모델',
  'picker.none': '불러온 모델 없음',
  'picker.choose': '모델 선택…',
  'picker.loading': '{name} 불러오는 중… {percent}%',
  'picker.ready': '{name}',
  'picker.error': '불러오기 실패',
  'firstrun.title': 'Hearth에 오신 것을 환영합니다',
  'firstrun.body': 'Hearth는 언어 모델을 전적으로 이 컴퓨터에서 실행합니다. 입력한 내용은 이 기기를 벗어나지 않습니다. 시작하려면 모델을 내려받거나 가지고 있는 GGUF 파일을 가져오세요.',
  'firstrun.cta': '모델 가져오기',
  'models.title': '모델',
  'models.installed': '설치됨',
  'models.noneInstalled': '설치된 모델이 없습니다.',
  'models.catalog': '카탈로그',
  'models.import': '로컬 GGUF 가져오기',
  'models.importPath': '.gguf 파일 경로',
  'models.importButton': '가져오기',
  'models.browse': '찾아보기…',
  'models.dropHere': '또는 .gguf 파일을 여기에 놓으세요',
  'models.imported': '{name} 가져옴',
  'models.download': '내려받기',
  'models.cancel': '취소',
  'models.resume': '이어받기',
  'models.retry': '다시 시도',
  'models.load': '불러오기',
  'models.loaded': '불러옴',
  'models.remove': '제거',
  'models.removeConfirm': '{name}을(를) 디스크에서 제거할까요?',
  'models.installedBadge': '설치됨',
  'models.size': '내려받기 {size}',
  'models.needs': '사용 가능한 메모리 {available} 중 {required} 필요',
  'models.fit.fits': '여유 있음',
  'models.fit.tight': '빠듯함',
  'models.fit.too_big': '너무 큼',
  'models.progress': '{total} 중 {done} · {rate}/s · {eta} 남음',
  'models.progressLabel': '{name} 내려받기 진행률',
  'models.paused': '{total} 중 {done}에서 일시 중지됨',
  'models.failed': '내려받기 실패',
  'models.emptyPath': '.gguf 파일 경로를 입력하세요',
  'models.notGguf': '.gguf 파일만 가져올 수 있습니다',
  'models.context': '컨텍스트 {n}',
  'models.desc': '매개변수 {params}개, 최대 {context}토큰 컨텍스트',
  'settings.title': '설정',
  'settings.generation': '생성',
  'settings.appearance': '모양',
  'settings.performance': '성능',
  'settings.systemPrompt': '시스템 프롬프트',
  'settings.temperature': '온도',
  'settings.topP': 'Top P',
  'settings.topK': 'Top K',
  'settings.minP': 'Min P',
  'settings.repeatPenalty': '반복 페널티',
  'settings.seed': '시드 (비우면 무작위)',
  'settings.contextSize': '컨텍스트 크기 (토큰)',
  'settings.threads': '스레드 수 (비우면 자동)',
  'settings.device': '장치',
  'settings.device.auto': '자동',
  'settings.device.cpu': 'CPU',
  'settings.device.gpu': 'GPU',
  'settings.theme': '테마',
  'settings.theme.light': '밝게',
  'settings.theme.dark': '어둡게',
  'settings.theme.system': '시스템 설정',
  'settings.language': '언어',
  'settings.saved': '저장됨',
  'settings.invalid': '잘못된 값',
  'error.title': '오류 ({code})',
  'link.open': '브라우저에서 링크 열기: {url}',
  'shortcuts.hint': 'Enter 전송 · Shift+Enter 줄바꿈 · Esc 중지 · Ctrl+N 새 대화 · Ctrl+K 검색',
  'units.B': 'B',
  'units.KB': 'KB',
  'units.MB': 'MB',
  'units.GB': 'GB',
  'time.s': '{n}초',
  'time.m': '{m}분 {s}초',
  'time.h': '{h}시간 {m}분',
  'time.unknown': '—',
};

const tables: Record<Language, Record<Key, string>> = { en, ko };

let current: Language = 'en';
const listeners = new Set<() => void>();

export function getLanguage(): Language {
  return current;
}

export function setLanguage(lang: Language): void {
  if (lang === current) return;
  current = lang;
  document.documentElement.lang = lang;
  for (const l of listeners) l();
}

export function onLanguageChange(fn: () => void): void {
  listeners.add(fn);
}

/** Looks a key up and fills {placeholders}; values are inserted as text by callers, never as HTML. */
export function t(key: Key, vars?: Record<string, string | number>): string {
  let s: string = tables[current][key] ?? en[key];
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  }
  return s;
}

export function formatBytes(n: number): string {
  const units: Key[] = ['units.B', 'units.KB', 'units.MB', 'units.GB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${t(units[i])}`;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return t('time.unknown');
  const s = Math.round(seconds);
  if (s < 60) return t('time.s', { n: s });
  if (s < 3600) return t('time.m', { m: Math.floor(s / 60), s: s % 60 });
  return t('time.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

/**
 * A parameter count as the catalog writes it ("270M", "4B") in the current language: "4B" in
 * English, "40억" in Korean. Anything else is shown as it came.
 */
export function formatParams(params: string): string {
  const m = /^(\d+(?:\.\d+)?)\s*([KMB])$/i.exec(params.trim());
  if (!m) return params;
  const scale = { K: 1e3, M: 1e6, B: 1e9 }[m[2].toUpperCase() as 'K' | 'M' | 'B'];
  return new Intl.NumberFormat(current === 'ko' ? 'ko-KR' : 'en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(Number(m[1]) * scale);
}

export function formatNumber(n: number): string {
  return new Intl.NumberFormat(current === 'ko' ? 'ko-KR' : 'en-US').format(n);
}
