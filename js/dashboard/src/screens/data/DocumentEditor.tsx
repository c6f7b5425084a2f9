// Insert and edit as Convex JSON text; the server checks the document against the
// schema and its refusal is shown here, nothing written.
import { useState, type FormEvent } from "react";
import { Alert } from "../../components/errors";
import { parseJsonText } from "../../components/values";

export function DocumentEditor(props: {
  title: string;
  initial: string;
  submitLabel: string;
  onSave: (document: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}) {
  const [text, setText] = useState(props.initial);
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    let document: unknown;
    try {
      document = parseJsonText(text, "The document");
    } catch (e) {
      setError((e as Error).message);
      return;
    }
    if (typeof document !== "object" || document === null || Array.isArray(document)) {
      setError("The document must be a JSON object, e.g. {\"body\": \"hello\"}.");
      return;
    }
    setSaving(true);
    try {
      await props.onSave(document as Record<string, unknown>);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setSaving(false);
    }
  };
  const id = `editor-${props.title.replace(/\W+/g, "-")}`;
  return (
    <form className="editor" onSubmit={(e) => void submit(e)} aria-label={props.title}>
      <label htmlFor={id}>{props.title} (Convex JSON)</label>
      <textarea
        id={id}
        rows={Math.min(16, Math.max(4, text.split("\n").length + 1))}
        value={text}
        spellCheck={false}
        onChange={(e) => setText(e.target.value)}
      />
      <div className="actions">
        <button type="submit" disabled={saving}>
          {props.submitLabel}
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
      <Alert>{error}</Alert>
    </form>
  );
}
