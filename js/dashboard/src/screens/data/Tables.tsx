export function TablesScreen() {
  return <h1>Tables</h1>;
}
