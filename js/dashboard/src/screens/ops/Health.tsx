export function HealthScreen() {
  return <h1>Health</h1>;
}
