import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Served by `headwater serve` under /dashboard/ on the dashboard port; hashed file
// names let the server cache assets forever (index.html is never cached).
export default defineConfig({
  base: "/dashboard/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
});
