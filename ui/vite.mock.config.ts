import { defineConfig } from 'vite';

// Builds the in-memory fake backend the UI tests inject before the app loads (never shipped in dist/).
export default defineConfig({
  build: {
    target: 'es2022',
    outDir: 'dist-mock',
    emptyOutDir: true,
    lib: { entry: 'tests/mock/backend.ts', name: 'HearthMock', formats: ['iife'], fileName: () => 'mock.js' },
  },
});
