// What every screen needs to speak to the deployment: its URL and the admin key.
// The login gate (App) provides it once the key is accepted; screens read it with
// useSession() and reach data through the ConvexProvider's client (useQuery...).
import { createContext, useContext } from "react";

export type Session = {
  deploymentUrl: string;
  adminKey: string;
  logout: () => void;
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession() outside the login gate");
  return session;
}

// A fetch of the deployment's HTTP API with the admin key (runs, log streams).
export async function adminFetch(
  session: Session,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Convex ${session.adminKey}`);
  return fetch(`${session.deploymentUrl}${path}`, { ...init, headers });
}
