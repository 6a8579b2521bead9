import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "bundled/**", "node_modules/**", "esbuild.mjs", "eslint.config.mjs"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-floating-promises": "off",
      "no-console": "error",
    },
  },
);
