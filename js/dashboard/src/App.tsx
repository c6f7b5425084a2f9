import { BrowserRouter, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { LoginGate } from "./components/LoginGate";
import { useSession } from "./session";
import { TablesScreen } from "./screens/data/Tables";
import { TableScreen } from "./screens/data/Table";
import { LogScreen } from "./screens/data/Log";
import { FunctionsScreen } from "./screens/ops/Functions";
import { LogsScreen } from "./screens/ops/Logs";
import { SchedulesScreen } from "./screens/ops/Schedules";
import { FilesScreen } from "./screens/ops/Files";
import { HealthScreen } from "./screens/ops/Health";

// The screens, each under /dashboard/...; the login gate wraps them all.
export function App() {
  return (
    <BrowserRouter basename="/dashboard">
      <LoginGate>
        <Layout />
      </LoginGate>
    </BrowserRouter>
  );
}

function NotFound() {
  return (
    <>
      <h1>No such page</h1>
      <p>
        <NavLink to="/data">See the data</NavLink>
      </p>
    </>
  );
}

function Layout() {
  const session = useSession();
  const { search } = useLocation();
  // The time travel position follows the data screens from one to another.
  const ts = new URLSearchParams(search).get("ts");
  const keep = ts ? `?ts=${ts}` : "";
  return (
    <div className="layout">
      <nav aria-label="Dashboard">
        <p className="brand">Headwater</p>
        <NavLink to={`/data${keep}`}>Data</NavLink>
        <NavLink to={`/log${keep}`}>Commit log</NavLink>
        <NavLink to="/functions">Functions</NavLink>
        <NavLink to="/logs">Logs</NavLink>
        <NavLink to="/schedules">Schedules</NavLink>
        <NavLink to="/files">Files</NavLink>
        <NavLink to="/health">Health</NavLink>
        <p className="deployment" title="Deployment">
          {session.deploymentUrl}
        </p>
        <button type="button" className="logout" onClick={session.logout}>
          Log out
        </button>
      </nav>
      <main>
        <Routes>
          <Route path="/" element={<TablesScreen />} />
          <Route path="/data" element={<TablesScreen />} />
          <Route path="/data/:table" element={<TableScreen />} />
          <Route path="/log" element={<LogScreen />} />
          <Route path="/functions" element={<FunctionsScreen />} />
          <Route path="/logs" element={<LogsScreen />} />
          <Route path="/schedules" element={<SchedulesScreen />} />
          <Route path="/files" element={<FilesScreen />} />
          <Route path="/health" element={<HealthScreen />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </div>
  );
}
