export function LogsScreen() {
  return <h1>Logs</h1>;
}
