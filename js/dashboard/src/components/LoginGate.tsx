// The login gate: the admin key from `#admin_key=` (then removed from the address bar),
// else the stored one, else the form. A key is checked against the deployment before any
// screen shows; the accepted key gets one ConvexReactClient with admin auth.
import { ConvexProvider, ConvexReactClient } from "convex/react";
import { useCallback, useEffect, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { loadConfig } from "../api";
import { forgetKey, storedKey, storeKey, takeKeyFromFragment } from "../auth";
import { SessionContext, type Session } from "../session";
import { Alert } from "./errors";

type Check = "accepted" | "refused" | "unreachable";

export const REFUSED = "The admin key was not accepted.";

async function checkKey(deploymentUrl: string, key: string): Promise<Check> {
  try {
    const response = await fetch(`${deploymentUrl}/api/query`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Convex ${key}` },
      body: JSON.stringify({ path: "_system/dashboard/data:range", args: {}, format: "json" }),
    });
    if (response.status === 401 || response.status === 403) return "refused";
    await response.text();
    return "accepted";
  } catch {
    return "unreachable";
  }
}

export function LoginGate({ children }: { children: ReactNode }) {
  const [deploymentUrl, setDeploymentUrl] = useState<string | null>(null);
  const [key, setKey] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [checking, setChecking] = useState(true);

  const tryKey = useCallback(async (url: string, candidate: string) => {
    setChecking(true);
    const check = await checkKey(url, candidate);
    setChecking(false);
    if (check === "accepted") {
      storeKey(candidate);
      setMessage(null);
      setKey(candidate);
    } else {
      forgetKey();
      setKey(null);
      setMessage(check === "refused" ? REFUSED : `The deployment at ${url} did not answer.`);
    }
  }, []);

  useEffect(() => {
    takeKeyFromFragment();
    let cancelled = false;
    loadConfig()
      .then((config) => {
        if (cancelled) return;
        setDeploymentUrl(config.deploymentUrl);
        const stored = storedKey();
        if (stored) void tryKey(config.deploymentUrl, stored);
        else setChecking(false);
      })
      .catch(() => {
        setChecking(false);
        setMessage("The dashboard's configuration could not be loaded.");
      });
    return () => {
      cancelled = true;
    };
  }, [tryKey]);

  const logout = useCallback(() => {
    forgetKey();
    setKey(null);
    setMessage(null);
  }, []);

  if (deploymentUrl !== null && key !== null) {
    return (
      <Connected deploymentUrl={deploymentUrl} adminKey={key} logout={logout}>
        {children}
      </Connected>
    );
  }
  if (checking && message === null && storedKey() !== null) {
    return (
      <main className="login">
        <p aria-live="polite">Connecting to the deployment…</p>
      </main>
    );
  }
  return (
    <LoginForm
      disabled={checking || deploymentUrl === null}
      message={message}
      onSubmit={(candidate) => deploymentUrl && void tryKey(deploymentUrl, candidate)}
    />
  );
}

function LoginForm(props: {
  disabled: boolean;
  message: string | null;
  onSubmit: (key: string) => void;
}) {
  const [value, setValue] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (value.trim()) props.onSubmit(value.trim());
  };
  return (
    <main className="login">
      <h1>Headwater dashboard</h1>
      <form onSubmit={submit}>
        <label htmlFor="admin-key">Admin key</label>
        <input
          id="admin-key"
          type="password"
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" disabled={props.disabled}>
          Log in
        </button>
      </form>
      <p className="hint">
        <code>headwater serve</code> prints the admin key and a link that logs in.
      </p>
      <Alert>{props.message}</Alert>
    </main>
  );
}

function Connected(props: {
  deploymentUrl: string;
  adminKey: string;
  logout: () => void;
  children: ReactNode;
}) {
  const { deploymentUrl, adminKey, logout } = props;
  const client = useMemo(() => {
    const client = new ConvexReactClient(deploymentUrl);
    (client as any).setAdminAuth(adminKey);
    return client;
  }, [deploymentUrl, adminKey]);
  useEffect(() => () => void client.close(), [client]);
  const session: Session = useMemo(
    () => ({ deploymentUrl, adminKey, logout }),
    [deploymentUrl, adminKey, logout],
  );
  return (
    <ConvexProvider client={client}>
      <SessionContext.Provider value={session}>{props.children}</SessionContext.Provider>
    </ConvexProvider>
  );
}
