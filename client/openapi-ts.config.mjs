// The TypeScript client of /api/v1, as a frontend team generates it: `make client`.
// Input: the committed contract document (tests/test_openapi_snapshot.py keeps it
// equal to the app's). Output: client/generated/, git-ignored.
import { defineConfig } from "@hey-api/openapi-ts";

export default defineConfig({
  input: "../docs/contract/openapi.json",
  output: "generated",
  parser: {
    // The docs routes (tag "docs") serve the API's own documentation; a client has no use for them.
    filters: { tags: { exclude: ["docs"] } },
  },
  plugins: [
    "@hey-api/client-fetch",
    "zod",
    // Every response body is checked against its zod schema before the SDK returns it.
    // Requests are not checked here, so the scenario can send what the server must refuse.
    { name: "@hey-api/sdk", validator: { request: false, response: "zod" } },
  ],
});
