export function TableScreen() {
  return <h1>Table</h1>;
}
