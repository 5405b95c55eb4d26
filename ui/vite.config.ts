import { defineConfig } from 'vite';

// The Tauri shell serves dist/ from its own protocol; relative paths keep that and the test server working.
export default defineConfig({
  base: './',
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, sourcemap: false },
});
