// A failed query (`useQuery` throws its error while rendering) shows its text in place
// of the part that failed instead of blanking the whole dashboard.
import { Component, type ReactNode } from "react";

type Props = { label: string; children: ReactNode };
type State = { error: Error | null };

export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  render() {
    if (this.state.error === null) return this.props.children;
    return (
      <div role="alert">
        <p>Could not load {this.props.label}:</p>
        <pre className="error">{this.state.error.message}</pre>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}
