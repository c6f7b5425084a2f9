// A server's error as the user should read it: the client's "[CONVEX Q(path)] [Request
// ID: ...] Server Error" wrapping and "Called by client" trailer taken off.
export function errorText(error: unknown): string {
  let text = error instanceof Error ? error.message : String(error);
  text = text.replace(/^\[CONVEX [A-Z]+\([^)]*\)\]\s*/, "");
  text = text.replace(/^\[Request ID: [^\]]*\]\s*/, "");
  text = text.replace(/^Server Error\s*/, "");
  text = text.replace(/^Uncaught Error:\s*/, "");
  text = text.replace(/\s*Called by client\s*$/, "");
  return text.trim();
}

export function Alert({ children }: { children: React.ReactNode }) {
  if (children === null || children === undefined || children === "") return null;
  return (
    <p role="alert" className="error">
      {children}
    </p>
  );
}
