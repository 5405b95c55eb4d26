// Every user-visible string goes through this table so the language setting can switch live.
import type { ErrorCode, ErrorDetails, Language } from './ipc';

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
  'chat.error': 'Generation failed',
  'chat.generating': 'Generating…',
  'chat.messages': 'Messages',
  'composer.label': 'Message',
  'composer.placeholder': 'Message Hearth — Enter to send, Shift+Enter for a new line',
  'composer.send': 'Send',
  'composer.stop': 'Stop (Esc)',
  'composer.drop': 'Drop files to attach',
  'composer.attachments': 'Attachments',
  'composer.attach': 'Attach files',
  'attach.preview': 'Preview of {name}',
  'doc.card': 'Document {name}',
  'doc.kind.text': 'Text',
  'doc.kind.markdown': 'Markdown',
  'doc.kind.html': 'HTML',
  'doc.kind.pdf': 'PDF',
  'doc.kind.docx': 'Word document',
  'doc.kind.code': 'Code',
  'doc.kind.csv': 'CSV',
  'doc.kind.json': 'JSON',
  'doc.tokens': '{n} tokens',
  'doc.chars': '{n} characters',
  'doc.reading': 'Reading the document…',
  'doc.noModel': 'No model is loaded. Load one to see how this document would be summarized.',
  'doc.modelLoading': 'The model is still loading. The summary plan appears once it is ready.',
  'doc.planWhole': 'Summarized in one pass (context {context} tokens)',
  'doc.planMapReduce': 'Summarized in {chunks} parts, then combined in {levels} round(s)',
  'doc.planTime': 'About {time}',
  'doc.planTimeUnknown': 'Time not known yet: the model has not replied on this computer',
  'doc.planMemory': 'Memory {memory} ({verdict})',
  'doc.verdict.fits': 'fits',
  'doc.verdict.tight': 'tight',
  'doc.verdict.tooBig': 'too big',
  'doc.summarize': 'Summarize',
  'doc.viewText': 'View text',
  'doc.textTitle': 'Text of {name}',
  'doc.textOf': 'Show the text of {name}',
  'doc.close': 'Close',
  'doc.progress': '{read} of {total} tokens read',
  'doc.rate': '{rate} tok/s',
  'doc.left': '{time} left',
  'doc.cancel': 'Cancel',
  'doc.summarizing': 'Summarizing {name}',
  'doc.cancelled': 'Summary stopped. The finished parts are kept: summarize again to continue.',
  'doc.done': 'Saved the summary of {name}',
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
  'settings.device.gpuUnavailable': 'GPU (not available here)',
  'settings.device.noGpu': 'This build found no GPU it can use here, so the model runs on the CPU.',
  'settings.inUse': 'In use: {device}',
  'settings.inUseThreads': 'In use: {device} · {n} threads',
  'settings.inUseOneThread': 'In use: {device} · 1 thread',
  'settings.panScan': 'Pan & Scan: read wide and tall images in detail',
  'settings.panScan.note': "An image much wider than tall (or taller than wide) is also read as up to 4 crops, as Gemma 3's reference does. More detail, but up to 5 times the image's tokens and reading time.",
  'device.cpu': 'CPU',
  'device.cuda': 'GPU (CUDA)',
  'device.metal': 'GPU (Metal)',
  'settings.theme': 'Theme',
  'settings.theme.light': 'Light',
  'settings.theme.dark': 'Dark',
  'settings.theme.system': 'System',
  'settings.language': 'Language',
  'settings.saved': 'Saved',
  'settings.invalid': 'Invalid value',
  'settings.hfToken': 'Hugging Face token',
  'settings.hfToken.label': 'Read token',
  'settings.hfToken.note': 'Only needed for gated models. The token is stored on this computer only and is never shown again.',
  'settings.hfToken.set': 'A token is set.',
  'settings.hfToken.none': "No token: gated models (Google's own QAT files) cannot be downloaded.",
  'settings.hfToken.save': 'Save token',
  'settings.hfToken.remove': 'Remove token',
  'models.remote': 'Models on other machines',
  'models.remote.note': 'A model served by another computer (llama-server, vLLM, another Hearth) is chosen like an installed one; it runs there, not here.',
  'models.remote.none': 'No remote models yet.',
  'models.remote.name': 'Name',
  'models.remote.url': 'Server address',
  'models.remote.model': 'Model id (optional)',
  'models.remote.key': 'API key (optional)',
  'models.remote.keyNote': 'The key is stored on this computer only and is never shown again.',
  'models.remote.add': 'Add remote model',
  'models.remote.added': 'Added {name}',
  'models.remote.hasKey': 'key stored',
  'models.remote.firstModel': 'first model the server lists',
  'models.remote.check': 'Check',
  'models.remote.checking': 'Checking…',
  'models.remote.answers': 'Answers: {models}',
  'models.remote.answersNone': 'Answers, but lists no models',
  'models.remote.use': 'Use',
  'models.remote.removeConfirm': 'Forget {name} and its key?',
  'models.remote.runsOn': 'Runs on {url}',
  'models.remote.emptyName': 'Enter a name',
  'models.remote.emptyUrl': 'Enter the server address, e.g. http://192.168.1.20:8080',
  'settings.server': 'Local API server',
  'settings.server.switch': 'Run the OpenAI-compatible API server',
  'settings.server.note': 'Other programs on this computer (editors, scripts, note apps) can use the loaded model through an OpenAI-compatible API. It listens on this computer only (127.0.0.1).',
  'settings.server.port': 'Port',
  'settings.server.store': 'Store API conversations in the chat history',
  'settings.server.requireKey': 'Require the API key',
  'settings.server.url': 'Address',
  'settings.server.key': 'API key',
  'settings.server.copy': 'Copy',
  'settings.server.copyUrl': 'Copy address',
  'settings.server.copyKey': 'Copy API key',
  'settings.server.copied': 'Copied',
  'settings.server.running': 'Running at {url}',
  'settings.server.off': 'Off',
  'settings.server.badPort': 'Enter a port from 1 to 65535',
  'error.details': 'Details',
  'error.code': 'Code',
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
  'chat.error': '생성 실패',
  'chat.generating': '생성 중…',
  'chat.messages': '메시지',
  'composer.label': '메시지',
  'composer.placeholder': 'Hearth에게 메시지 보내기 — Enter 전송, Shift+Enter 줄바꿈',
  'composer.send': '보내기',
  'composer.stop': '중지 (Esc)',
  'composer.drop': '파일을 놓아 첨부하기',
  'composer.attachments': '첨부 파일',
  'composer.attach': '파일 첨부',
  'attach.preview': '{name} 미리 보기',
  'doc.card': '문서 {name}',
  'doc.kind.text': '텍스트',
  'doc.kind.markdown': '마크다운',
  'doc.kind.html': 'HTML',
  'doc.kind.pdf': 'PDF',
  'doc.kind.docx': 'Word 문서',
  'doc.kind.code': '코드',
  'doc.kind.csv': 'CSV',
  'doc.kind.json': 'JSON',
  'doc.tokens': '{n}토큰',
  'doc.chars': '{n}자',
  'doc.reading': '문서를 읽는 중…',
  'doc.noModel': '불러온 모델이 없습니다. 모델을 불러오면 이 문서를 어떻게 요약할지 보여 줍니다.',
  'doc.modelLoading': '모델을 불러오는 중입니다. 준비되면 요약 계획을 보여 줍니다.',
  'doc.planWhole': '한 번에 요약 (컨텍스트 {context}토큰)',
  'doc.planMapReduce': '{chunks}개 부분으로 나눠 요약한 뒤 {levels}단계로 합침',
  'doc.planTime': '약 {time}',
  'doc.planTimeUnknown': '이 컴퓨터에서 모델이 아직 답한 적이 없어 시간을 알 수 없습니다',
  'doc.planMemory': '메모리 {memory} ({verdict})',
  'doc.verdict.fits': '충분',
  'doc.verdict.tight': '빠듯함',
  'doc.verdict.tooBig': '부족',
  'doc.summarize': '요약하기',
  'doc.viewText': '텍스트 보기',
  'doc.textTitle': '{name}의 텍스트',
  'doc.textOf': '{name}의 텍스트 보기',
  'doc.close': '닫기',
  'doc.progress': '{total}토큰 중 {read}토큰 읽음',
  'doc.rate': '초당 {rate}토큰',
  'doc.left': '{time} 남음',
  'doc.cancel': '취소',
  'doc.summarizing': '{name} 요약 중',
  'doc.cancelled': '요약을 멈췄습니다. 끝난 부분은 저장되어 있어 다시 요약하면 이어서 진행합니다.',
  'doc.done': '{name} 요약을 저장했습니다',
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
  'settings.device.gpuUnavailable': 'GPU (여기서는 사용할 수 없음)',
  'settings.device.noGpu': '이 빌드가 여기서 사용할 수 있는 GPU를 찾지 못해 모델은 CPU에서 실행됩니다.',
  'settings.inUse': '사용 중: {device}',
  'settings.inUseThreads': '사용 중: {device} · 스레드 {n}개',
  'settings.inUseOneThread': '사용 중: {device} · 스레드 1개',
  'settings.panScan': '팬 앤 스캔: 가로나 세로로 긴 이미지를 자세히 읽기',
  'settings.panScan.note': '가로나 세로로 많이 긴 이미지는 Gemma 3 참조 구현처럼 최대 4개로 잘라 함께 읽습니다. 더 자세히 보지만 이미지의 토큰과 읽는 시간이 최대 5배가 됩니다.',
  'device.cpu': 'CPU',
  'device.cuda': 'GPU (CUDA)',
  'device.metal': 'GPU (Metal)',
  'settings.theme': '테마',
  'settings.theme.light': '밝게',
  'settings.theme.dark': '어둡게',
  'settings.theme.system': '시스템 설정',
  'settings.language': '언어',
  'settings.saved': '저장됨',
  'settings.invalid': '잘못된 값',
  'settings.hfToken': 'Hugging Face 토큰',
  'settings.hfToken.label': '읽기 토큰',
  'settings.hfToken.note': '접근 제한 모델에만 필요합니다. 토큰은 이 컴퓨터에만 저장되며 다시 표시되지 않습니다.',
  'settings.hfToken.set': '토큰이 설정되어 있습니다.',
  'settings.hfToken.none': '토큰 없음: 접근 제한 모델(Google의 자체 QAT 파일)은 내려받을 수 없습니다.',
  'settings.hfToken.save': '토큰 저장',
  'settings.hfToken.remove': '토큰 삭제',
  'models.remote': '다른 컴퓨터의 모델',
  'models.remote.note': '다른 컴퓨터가 제공하는 모델(llama-server, vLLM, 다른 Hearth)을 설치된 모델처럼 고를 수 있습니다. 모델은 이 컴퓨터가 아니라 그 컴퓨터에서 실행됩니다.',
  'models.remote.none': '아직 원격 모델이 없습니다.',
  'models.remote.name': '이름',
  'models.remote.url': '서버 주소',
  'models.remote.model': '모델 ID (선택)',
  'models.remote.key': 'API 키 (선택)',
  'models.remote.keyNote': '키는 이 컴퓨터에만 저장되며 다시 표시되지 않습니다.',
  'models.remote.add': '원격 모델 추가',
  'models.remote.added': '{name} 추가됨',
  'models.remote.hasKey': '키 저장됨',
  'models.remote.firstModel': '서버가 알려 주는 첫 모델',
  'models.remote.check': '확인',
  'models.remote.checking': '확인하는 중…',
  'models.remote.answers': '응답함: {models}',
  'models.remote.answersNone': '응답하지만 제공하는 모델이 없음',
  'models.remote.use': '사용',
  'models.remote.removeConfirm': '{name}과(와) 키를 삭제할까요?',
  'models.remote.runsOn': '{url}에서 실행 중',
  'models.remote.emptyName': '이름을 입력하세요',
  'models.remote.emptyUrl': '서버 주소를 입력하세요. 예: http://192.168.1.20:8080',
  'settings.server': '로컬 API 서버',
  'settings.server.switch': 'OpenAI 호환 API 서버 실행',
  'settings.server.note': '이 컴퓨터의 다른 프로그램(편집기, 스크립트, 메모 앱)이 OpenAI 호환 API로 불러온 모델을 쓸 수 있습니다. 이 컴퓨터(127.0.0.1)에서만 접속할 수 있습니다.',
  'settings.server.port': '포트',
  'settings.server.store': 'API 대화를 대화 기록에 저장',
  'settings.server.requireKey': 'API 키 요구',
  'settings.server.url': '주소',
  'settings.server.key': 'API 키',
  'settings.server.copy': '복사',
  'settings.server.copyUrl': '주소 복사',
  'settings.server.copyKey': 'API 키 복사',
  'settings.server.copied': '복사됨',
  'settings.server.running': '{url}에서 실행 중',
  'settings.server.off': '꺼짐',
  'settings.server.badPort': '1부터 65535 사이의 포트를 입력하세요',
  'error.details': '자세히',
  'error.code': '코드',
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

// ---------- error sentences ----------
// One sentence per ErrorCode and language, with the error's details filled in. Record<ErrorCode, ...>
// makes a code without a sentence a type error. The backend's English `message` is never part of
// these: the UI shows it only inside a collapsed "details" element (see errors.ts).
// No sentence may tell the user to run a command: this is a desktop app.

type Sentence = (d: ErrorDetails) => string;

const bytes = (n: number | undefined) => (n === undefined ? '' : formatBytes(n));
const num = (n: number | undefined) => (n === undefined ? '' : formatNumber(n));

const SETTING_LABELS: Record<string, Key> = {
  systemPrompt: 'settings.systemPrompt',
  temperature: 'settings.temperature',
  topP: 'settings.topP',
  topK: 'settings.topK',
  minP: 'settings.minP',
  repeatPenalty: 'settings.repeatPenalty',
  seed: 'settings.seed',
  contextSize: 'settings.contextSize',
  threads: 'settings.threads',
  device: 'settings.device',
  theme: 'settings.theme',
  language: 'settings.language',
  port: 'settings.server.port',
};

/** A settings field's label in the current language, without its parenthesised hint. */
function settingLabel(field: string): string {
  const key = SETTING_LABELS[field];
  return key ? t(key).replace(/\s*\(.*\)\s*$/, '') : field;
}

const errorsEn: Record<ErrorCode, Sentence> = {
  not_found: (d) => {
    if (d.model && d.path) return `Hugging Face has no file ${d.path} in ${d.model}. The catalog may be out of date.`;
    switch (d.field) {
      case 'conversation':
        return 'This conversation no longer exists. It may have been deleted.';
      case 'message':
        return 'This message no longer exists. It may have been deleted.';
      case 'attachment':
        return d.path ? `The attached file ${d.path} could not be found.` : 'The attached file could not be found.';
      case 'model':
        return d.model ? `There is no model ${d.model}, installed or in the catalog.` : 'That model is not installed or in the catalog.';
      case 'download':
        return d.model ? `No download of ${d.model} is running.` : 'That download is not running.';
    }
    if (d.path) return `There is no file at ${d.path}.`;
    if (d.model) return `There is no model ${d.model}, installed or in the catalog.`;
    return 'What you asked for no longer exists.';
  },
  invalid_id: () => 'Hearth does not recognise this item. Go back to the list and try again.',
  invalid_title: () => 'A title cannot be empty.',
  invalid_url: () => 'Only web (http, https) and email links can be opened.',
  invalid_message: () => 'This message cannot be used for that: it is empty, or it is the wrong kind of message.',
  invalid_setting: (d) => {
    const f = d.field ? settingLabel(d.field) : null;
    if (f && d.min !== undefined && d.max !== undefined) return `${f} must be between ${num(d.min)} and ${num(d.max)}.`;
    if (f && d.min !== undefined) return `${f} must be at least ${num(d.min)}.`;
    if (f && d.max !== undefined) return `${f} must be at most ${num(d.max)}.`;
    if (f) return `That value is not allowed for ${f}.`;
    return 'That value is not allowed for this setting.';
  },
  invalid_query: () => 'Type a word to search for.',
  busy: () => 'Hearth is busy writing a reply or loading a model. Try again once it has finished.',
  no_model: () => 'No model is loaded. Load one on the Models page to start chatting.',
  model_in_use: (d) => (d.model ? `${d.model} is loaded right now, so it cannot be removed. Load another model first.` : 'This model is loaded right now, so it cannot be removed. Load another model first.'),
  context_full: (d) =>
    d.needed !== undefined && d.limit !== undefined
      ? `This conversation no longer fits in the model's context: it needs ${num(d.needed)} tokens and the context holds ${num(d.limit)}. Start a new chat, or raise the context size in Settings.`
      : "This conversation no longer fits in the model's context. Start a new chat, or raise the context size in Settings.",
  context_too_long: (d) =>
    `${d.model ?? 'This model'} supports a context of at most ${d.limit !== undefined ? `${num(d.limit)} tokens` : 'a smaller size'}${d.needed !== undefined ? `, not ${num(d.needed)}` : ''}. Lower the context size in Settings.`,
  not_gguf: (d) => `${d.path ? `${d.path} is` : 'This file is'} not a GGUF model Hearth can read. It may be incomplete or damaged.`,
  unsupported_model: (d) => `${d.path ? `${d.path} is` : 'This is'} a model Hearth does not support yet. Hearth runs Gemma 3 models.`,
  out_of_memory: (d) =>
    d.needed !== undefined && d.available !== undefined
      ? `There is not enough free memory for this model: it needs ${bytes(d.needed)} and ${bytes(d.available)} is free. Close other programs or choose a smaller model.`
      : 'There is not enough free memory for this model. Close other programs or choose a smaller model.',
  already_installed: (d) => `${d.model ?? 'This model'} is already installed.`,
  download_running: (d) => `${d.model ?? 'This model'} is already downloading.`,
  disk_full: (d) =>
    `The disk is full${d.path ? ` at ${d.path}` : ''}${d.needed !== undefined && d.available !== undefined ? `: ${bytes(d.needed)} is needed and only ${bytes(d.available)} is free` : ''}. Free up some space and try again.`,
  io: (d) => (d.path ? `Hearth could not read or write ${d.path}. Check that it exists and that you may use it.` : 'Hearth could not read or write a file. Check the disk and try again.'),
  locked: (d) => `Another program is using Hearth's database${d.path ? ` (${d.path})` : ''}, perhaps another Hearth window. Close it and try again.`,
  read_only: (d) => `Hearth cannot save changes: ${d.path ?? 'its database'} is read-only. Check the file's permissions.`,
  database_corrupt: (d) => `Hearth's database${d.path ? ` at ${d.path}` : ''} is damaged or is not a Hearth database. Hearth left it untouched.`,
  newer_schema: (d) => `The database${d.path ? ` at ${d.path}` : ''} was written by a newer version of Hearth. Update Hearth to open it.`,
  network: () => 'The network connection failed. Check your internet connection and try again; a download continues where it stopped.',
  gated: (d) => `Hugging Face refused access to ${d.model ?? 'this model'}. Accept the model's licence on its Hugging Face page and add a read token in Settings → Hugging Face token.`,
  checksum: (d) => `The downloaded file${d.path ? ` ${d.path}` : ''} was damaged (its checksum did not match) and has been deleted. Download it again.`,
  bad_download: () => 'The download server sent an answer Hearth did not expect. Try again later.',
  catalog: () => 'The model catalog could not be read. Updating Hearth should fix this.',
  attachment_missing: (d) => `The attached file${d.path ? ` ${d.path}` : ''} no longer exists. Remove it and attach it again.`,
  attachment_unreadable: (d) => `The attached file${d.path ? ` ${d.path}` : ''} cannot be read. It may be a folder, or you may not have permission to open it.`,
  attachment_too_large: (d) =>
    `The attached file${d.path ? ` ${d.path}` : ''} is too large${d.size !== undefined && d.limit !== undefined ? ` (${bytes(d.size)}; the limit is ${bytes(d.limit)})` : ''}. Attach a smaller file.`,
  engine: () => 'The model failed while writing the reply. Try again, or load the model again.',
  internal: () => 'Something unexpected went wrong inside Hearth. Please try again.',
  document_no_text: (d) =>
    `The document${d.path ? ` ${d.path}` : ''} has no text to read. A scanned PDF is only pictures of pages: it needs text recognition (OCR) first.`,
  document_encrypted: (d) => `The document${d.path ? ` ${d.path}` : ''} is protected by a password. Save an unprotected copy and try again.`,
  document_unreadable: (d) =>
    `The document${d.path ? ` ${d.path}` : ''} cannot be read: it is damaged, or not the kind of file its name says.`,
  document_too_large: (d) =>
    `The document${d.path ? ` ${d.path}` : ''} is too large to read safely${d.size !== undefined && d.limit !== undefined ? ` (${bytes(d.size)}; the limit is ${bytes(d.limit)})` : ''}. Split it into smaller files.`,
  remote: (d) =>
    `The model server${d.model ? ` "${d.model}"` : ''}${d.path ? ` at ${d.path}` : ''} failed. Check that it is running and reachable, and its key${d.field === 'check' ? '' : '; the partial reply is kept'}.`,
  port_in_use: (d) => `Another program is already using ${d.path ?? 'that port'}. Choose another port for the local API server.`,
  image_input_unsupported: (d) =>
    `This model reads only text, so it cannot see images.${d.model ? ` Models that read images: ${d.model}.` : ''} Remove the image or switch to one of them.`,
  document_too_long: (d) =>
    `The document${d.path ? ` ${d.path}` : ''} is too long for this conversation${d.needed !== undefined && d.limit !== undefined ? ` (${d.needed} tokens; the context holds ${d.limit})` : ''}. Summarize it first, then ask about the summary.`,
};

const errorsKo: Record<ErrorCode, Sentence> = {
  not_found: (d) => {
    if (d.model && d.path) return `Hugging Face의 ${d.model} 저장소에 ${d.path} 파일이 없습니다. 카탈로그가 오래되었을 수 있습니다.`;
    switch (d.field) {
      case 'conversation':
        return '이 대화는 더 이상 없습니다. 삭제되었을 수 있습니다.';
      case 'message':
        return '이 메시지는 더 이상 없습니다. 삭제되었을 수 있습니다.';
      case 'attachment':
        return d.path ? `첨부한 파일(${d.path})을 찾을 수 없습니다.` : '첨부한 파일을 찾을 수 없습니다.';
      case 'model':
        return d.model ? `${d.model} 모델은 설치되어 있지 않고 카탈로그에도 없습니다.` : '그 모델은 설치되어 있지 않고 카탈로그에도 없습니다.';
      case 'download':
        return d.model ? `${d.model} 모델을 내려받는 중이 아닙니다.` : '진행 중인 내려받기가 아닙니다.';
    }
    if (d.path) return `${d.path} 경로에 파일이 없습니다.`;
    if (d.model) return `${d.model} 모델은 설치되어 있지 않고 카탈로그에도 없습니다.`;
    return '요청한 항목이 더 이상 없습니다.';
  },
  invalid_id: () => 'Hearth가 알 수 없는 항목입니다. 목록으로 돌아가 다시 시도하세요.',
  invalid_title: () => '제목은 비워 둘 수 없습니다.',
  invalid_url: () => '웹(http, https) 링크와 이메일 링크만 열 수 있습니다.',
  invalid_message: () => '이 메시지로는 그 작업을 할 수 없습니다. 메시지가 비어 있거나 종류가 맞지 않습니다.',
  invalid_setting: (d) => {
    const f = d.field ? settingLabel(d.field) : null;
    if (f && d.min !== undefined && d.max !== undefined) return `${f} 값은 ${num(d.min)}에서 ${num(d.max)} 사이여야 합니다.`;
    if (f && d.min !== undefined) return `${f} 값은 ${num(d.min)} 이상이어야 합니다.`;
    if (f && d.max !== undefined) return `${f} 값은 ${num(d.max)} 이하여야 합니다.`;
    if (f) return `${f}에 쓸 수 없는 값입니다.`;
    return '이 설정에 쓸 수 없는 값입니다.';
  },
  invalid_query: () => '검색할 단어를 입력하세요.',
  busy: () => 'Hearth가 답변을 생성하거나 모델을 불러오는 중입니다. 끝난 뒤에 다시 시도하세요.',
  no_model: () => '불러온 모델이 없습니다. 대화를 시작하려면 모델 페이지에서 모델을 불러오세요.',
  model_in_use: (d) => `${d.model ? `${d.model} 모델은` : '이 모델은'} 지금 사용 중이라 제거할 수 없습니다. 먼저 다른 모델을 불러오세요.`,
  context_full: (d) =>
    d.needed !== undefined && d.limit !== undefined
      ? `대화가 모델의 컨텍스트를 넘었습니다. 토큰이 ${num(d.needed)}개 필요한데 컨텍스트에는 ${num(d.limit)}개까지만 들어갑니다. 새 대화를 시작하거나 설정에서 컨텍스트 크기를 늘리세요.`
      : '대화가 모델의 컨텍스트를 넘었습니다. 새 대화를 시작하거나 설정에서 컨텍스트 크기를 늘리세요.',
  context_too_long: (d) =>
    `${d.model ? `${d.model} 모델은` : '이 모델은'} 컨텍스트를 ${d.limit !== undefined ? `최대 ${num(d.limit)}토큰까지` : '그만큼 길게'} 지원하지 않습니다${d.needed !== undefined ? `(요청: ${num(d.needed)}토큰)` : ''}. 설정에서 컨텍스트 크기를 줄이세요.`,
  not_gguf: (d) => `${d.path ? `${d.path} 파일은` : '이 파일은'} Hearth가 읽을 수 있는 GGUF 모델이 아닙니다. 파일이 불완전하거나 손상되었을 수 있습니다.`,
  unsupported_model: (d) => `${d.path ? `${d.path} 파일은` : '이 파일은'} Hearth가 아직 지원하지 않는 모델입니다. Hearth는 Gemma 3 모델을 실행합니다.`,
  out_of_memory: (d) =>
    d.needed !== undefined && d.available !== undefined
      ? `이 모델을 불러오기에는 메모리가 부족합니다. 필요한 메모리는 ${bytes(d.needed)}인데 사용 가능한 메모리는 ${bytes(d.available)}입니다. 다른 프로그램을 닫거나 더 작은 모델을 선택하세요.`
      : '이 모델을 불러오기에는 메모리가 부족합니다. 다른 프로그램을 닫거나 더 작은 모델을 선택하세요.',
  already_installed: (d) => `${d.model ? `${d.model} 모델은` : '이 모델은'} 이미 설치되어 있습니다.`,
  download_running: (d) => `${d.model ? `${d.model} 모델을` : '이 모델을'} 이미 내려받고 있습니다.`,
  disk_full: (d) =>
    `디스크 공간이 부족합니다${d.path ? `(${d.path})` : ''}.${d.needed !== undefined && d.available !== undefined ? ` 필요한 공간은 ${bytes(d.needed)}인데 남은 공간은 ${bytes(d.available)}입니다.` : ''} 공간을 확보한 뒤 다시 시도하세요.`,
  io: (d) => (d.path ? `${d.path} 경로를 읽거나 쓸 수 없습니다. 파일이 있는지, 사용할 권한이 있는지 확인하세요.` : '파일을 읽거나 쓸 수 없습니다. 디스크를 확인한 뒤 다시 시도하세요.'),
  locked: (d) => `다른 프로그램이 Hearth 데이터베이스${d.path ? `(${d.path})` : ''}를 사용하고 있습니다. 다른 Hearth 창이 열려 있다면 닫고 다시 시도하세요.`,
  read_only: (d) => `${d.path ? `${d.path} 파일이` : '데이터베이스가'} 읽기 전용이라 변경 내용을 저장할 수 없습니다. 파일 권한을 확인하세요.`,
  database_corrupt: (d) => `Hearth 데이터베이스${d.path ? `(${d.path})` : ''}가 손상되었거나 Hearth 데이터베이스가 아닙니다. 파일은 건드리지 않았습니다.`,
  newer_schema: (d) => `데이터베이스${d.path ? `(${d.path})` : ''}가 더 새로운 버전의 Hearth에서 만들어졌습니다. 열려면 Hearth를 업데이트하세요.`,
  network: () => '네트워크 연결에 실패했습니다. 인터넷 연결을 확인한 뒤 다시 시도하세요. 내려받기는 멈춘 곳부터 이어집니다.',
  gated: (d) => `Hugging Face가 ${d.model ?? '이 모델'}에 대한 접근을 거부했습니다. Hugging Face의 모델 페이지에서 라이선스에 동의하고 설정 → Hugging Face 토큰에서 읽기 토큰을 추가하세요.`,
  checksum: (d) => `내려받은 파일${d.path ? `(${d.path})` : ''}이 손상되어(체크섬 불일치) 삭제했습니다. 다시 내려받으세요.`,
  bad_download: () => '내려받기 서버가 예상하지 못한 응답을 보냈습니다. 잠시 후 다시 시도하세요.',
  catalog: () => '모델 카탈로그를 읽을 수 없습니다. Hearth를 업데이트하면 해결됩니다.',
  attachment_missing: (d) => `첨부한 파일${d.path ? `(${d.path})` : ''}이 더 이상 없습니다. 첨부를 지우고 다시 첨부하세요.`,
  attachment_unreadable: (d) => `첨부한 파일${d.path ? `(${d.path})` : ''}을 읽을 수 없습니다. 폴더이거나 열 권한이 없을 수 있습니다.`,
  attachment_too_large: (d) =>
    `첨부한 파일${d.path ? `(${d.path})` : ''}이 너무 큽니다${d.size !== undefined && d.limit !== undefined ? `(${bytes(d.size)}, 최대 ${bytes(d.limit)})` : ''}. 더 작은 파일을 첨부하세요.`,
  engine: () => '답변을 생성하는 중에 모델에 문제가 생겼습니다. 다시 시도하거나 모델을 다시 불러오세요.',
  internal: () => 'Hearth 내부에서 예상하지 못한 문제가 발생했습니다. 다시 시도해 주세요.',
  document_no_text: (d) =>
    `문서${d.path ? `(${d.path})` : ''}에 읽을 수 있는 글자가 없습니다. 스캔한 PDF는 페이지 그림일 뿐이라 먼저 문자 인식(OCR)이 필요합니다.`,
  document_encrypted: (d) => `문서${d.path ? `(${d.path})` : ''}가 암호로 보호되어 있습니다. 보호를 해제한 사본을 저장한 뒤 다시 시도하세요.`,
  document_unreadable: (d) => `문서${d.path ? `(${d.path})` : ''}를 읽을 수 없습니다. 손상되었거나 이름과 다른 종류의 파일입니다.`,
  document_too_large: (d) =>
    `문서${d.path ? `(${d.path})` : ''}가 너무 커서 안전하게 읽을 수 없습니다${d.size !== undefined && d.limit !== undefined ? `(${bytes(d.size)}, 최대 ${bytes(d.limit)})` : ''}. 더 작은 파일로 나누세요.`,
  remote: (d) =>
    `모델 서버${d.model ? `(${d.model})` : ''}${d.path ? `(${d.path})` : ''}에 문제가 생겼습니다. 서버가 실행 중이고 연결할 수 있는지, 키가 맞는지 확인하세요.${d.field === 'check' ? '' : ' 받은 부분까지의 답변은 남겨 둡니다.'}`,
  port_in_use: (d) => `다른 프로그램이 이미 ${d.path ?? '그 포트'}를 사용하고 있습니다. 로컬 API 서버에 다른 포트를 고르세요.`,
  image_input_unsupported: (d) =>
    `이 모델은 텍스트만 읽을 수 있어 이미지를 볼 수 없습니다.${d.model ? ` 이미지를 읽는 모델: ${d.model}.` : ''} 이미지를 빼거나 그중 한 모델로 바꾸세요.`,
  document_too_long: (d) =>
    `문서${d.path ? `(${d.path})` : ''}가 이 대화에 넣기에는 너무 깁니다${d.needed !== undefined && d.limit !== undefined ? `(${d.needed} 토큰, 컨텍스트 ${d.limit} 토큰)` : ''}. 먼저 요약한 뒤 요약에 대해 물어보세요.`,
};

const errorTables: Record<Language, Record<ErrorCode, Sentence>> = { en: errorsEn, ko: errorsKo };

/** The sentence for an error code in the current language, with its details filled in. */
export function errorText(code: ErrorCode, details: ErrorDetails | null | undefined): string {
  const table = errorTables[current];
  return (table[code] ?? table.internal)(details ?? {});
}
