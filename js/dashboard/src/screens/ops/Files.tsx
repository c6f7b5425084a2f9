// The Files screen: the stored files, each with a download link and a delete that
// asks to confirm first.
import "./ops.css";
import { useState } from "react";
import { useMutation } from "convex/react";
import { dashboardMutation } from "../../api";
import { Alert } from "../../components/errors";
import { useDashboardQuery } from "../../components/useDashboardQuery";
import { errorText, formatBytes, formatTime } from "./format";
import type { StoredFile } from "./types";

export function FilesScreen() {
  return (
    <div className="ops-screen">
      <h1>Files</h1>
      <FilesScreenBody />
    </div>
  );
}

function FilesScreenBody() {
  const { data: files, error } = useDashboardQuery<StoredFile[]>("ops:files", {});
  const deleteFile = useMutation(dashboardMutation("ops:deleteFile"));
  const [confirming, setConfirming] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  async function remove(storageId: string) {
    setProblem(null);
    try {
      await deleteFile({ storageId });
      setConfirming(null);
    } catch (error) {
      setProblem(`Could not delete ${storageId}: ${errorText(error)}`);
    }
  }

  return (
    <>
      <Alert>{problem}</Alert>
      {error !== null ? (
        <Alert>Could not load the files: {error}</Alert>
      ) : files === undefined ? (
        <p role="status">Loading files…</p>
      ) : files.length === 0 ? (
        <p>No stored files.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Storage ID</th>
              <th scope="col">Size</th>
              <th scope="col">Content type</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {files.map((file) => (
              <tr key={file.storageId}>
                <td>
                  <code>{file.storageId}</code>
                </td>
                <td>{formatBytes(file.size)}</td>
                <td>{file.contentType ?? "—"}</td>
                <td>{formatTime(file.creationTime)}</td>
                <td className="actions">
                  {file.url && (
                    <a href={file.url} download aria-label={`Download ${file.storageId}`}>
                      Download
                    </a>
                  )}
                  {confirming === file.storageId ? (
                    <span role="group" aria-label={`Confirm deleting ${file.storageId}`}>
                      Delete this file?{" "}
                      <button
                        type="button"
                        className="danger"
                        autoFocus
                        onClick={() => void remove(file.storageId)}
                      >
                        Confirm delete
                      </button>{" "}
                      <button type="button" onClick={() => setConfirming(null)}>
                        Keep
                      </button>
                    </span>
                  ) : (
                    <button
                      type="button"
                      onClick={() => setConfirming(file.storageId)}
                      aria-label={`Delete ${file.storageId}`}
                    >
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
