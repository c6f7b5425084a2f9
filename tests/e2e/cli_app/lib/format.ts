// Code outside convex/: the CLI bundles it into the modules that import it.
export function formatNote(text: string): string {
  return `note: ${text.trim()}`;
}
