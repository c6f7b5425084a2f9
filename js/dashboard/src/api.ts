// The dashboard's server functions (`_system/dashboard/<module>:<name>`, admin only),
// called by name through the official client.
import { makeFunctionReference } from "convex/server";

export const dashboardQuery = (name: string) =>
  makeFunctionReference<"query">(`_system/dashboard/${name}`);
export const dashboardMutation = (name: string) =>
  makeFunctionReference<"mutation">(`_system/dashboard/${name}`);

export type DashboardConfig = { deploymentUrl: string };

// The deployment the dashboard speaks to: the server that serves the dashboard says.
export async function loadConfig(): Promise<DashboardConfig> {
  const response = await fetch("/dashboard/config.json", { cache: "no-store" });
  return (await response.json()) as DashboardConfig;
}
