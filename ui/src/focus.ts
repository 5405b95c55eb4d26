// Redraws replace DOM nodes, which drops keyboard focus. These helpers name the focused control
// by something stable (its id, or its row's data-model/data-id plus its action) so the redraw can
// put focus back on the control's replacement.
export function focusKey(el: Element | null): string | null {
  if (!el || el === document.body) return null;
  if (el.id) return `#${el.id}`;
  const row = el.closest('[data-model], [data-id]');
  if (!row) return null;
  const rowKey = row.hasAttribute('data-model') ? `data-model="${CSS.escape(row.getAttribute('data-model')!)}"` : `data-id="${CSS.escape(row.getAttribute('data-id')!)}"`;
  return `${rowKey}|${el.getAttribute('data-action') ?? el.textContent ?? ''}`;
}

export function restoreFocus(key: string | null): void {
  if (!key) return;
  const active = document.activeElement;
  if (active && active !== document.body && active.isConnected) return;
  if (key.startsWith('#')) {
    document.getElementById(key.slice(1))?.focus();
    return;
  }
  const bar = key.indexOf('|');
  const row = key.slice(0, bar);
  const action = key.slice(bar + 1);
  for (const el of Array.from(document.querySelectorAll<HTMLElement>(`[${row}] button, [${row}] input`))) {
    if ((el.getAttribute('data-action') ?? el.textContent ?? '') === action) {
      el.focus();
      return;
    }
  }
}
