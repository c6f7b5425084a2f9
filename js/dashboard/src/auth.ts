// The admin key: typed into the login form, or passed once as `#admin_key=KEY` in the
// URL (taken, then removed from the address bar); kept in local storage.
const STORAGE_KEY = "headwater.adminKey";

export function takeKeyFromFragment(): void {
  const match = /(?:^#|&)admin_key=([^&]+)/.exec(window.location.hash);
  if (!match) return;
  localStorage.setItem(STORAGE_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", window.location.pathname + window.location.search);
}

export function storedKey(): string | null {
  return localStorage.getItem(STORAGE_KEY);
}

export function storeKey(key: string): void {
  localStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey(): void {
  localStorage.removeItem(STORAGE_KEY);
}
