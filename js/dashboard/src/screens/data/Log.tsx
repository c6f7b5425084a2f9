export function LogScreen() {
  return <h1>Log</h1>;
}
