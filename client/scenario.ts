// The /api/v1 contract end to end, as a frontend team drives it: through the
// client generated from the document (`make client`), type-checked with
// `tsc --strict`, run with node against a live server (tests/test_client.py).
// The SDK checks every successful body against its zod schema; error bodies
// are checked against the envelope's. Any mismatch, or any unexpected status,
// fails the run with a non-zero exit.

import { conditional } from "./conditional";
import { createClient, createConfig, urlSearchParamsBodySerializer } from "./generated/client";
import * as sdk from "./generated/sdk.gen";
import { zErrorEnvelope } from "./generated/zod.gen";

const baseUrl = process.env.API_URL;
if (!baseUrl) {
  throw new Error("set API_URL, e.g. http://127.0.0.1:5000/api/v1");
}
const client = createClient(createConfig({ baseUrl }));
const password = "correct horse battery";

function expect(condition: unknown, what: string): asserts condition {
  if (!condition) {
    throw new Error(`scenario: ${what}`);
  }
}

/** The error envelope of a failed call, checked against its schema. */
function envelope(error: unknown, status: number, response: Response) {
  expect(response.status === status, `expected ${status}, got ${response.status}`);
  return zErrorEnvelope.parse(error);
}

function bearer(token: string) {
  return { Authorization: `Bearer ${token}` };
}

async function main(): Promise<void> {
  const email = `scenario${Date.now()}@example.com`;

  // Register, then a second registration of the same email is a 409.
  const registered = await sdk.register({ client, body: { email, password, name: "Scenario" } });
  expect(registered.response.status === 201 && registered.data, "register answers 201");
  expect(registered.data.email === email, "the account keeps its email");
  const again = await sdk.register({ client, body: { email, password, name: "Again" } });
  expect(envelope(again.error, 409, again.response).error_code === 14000, "a taken email is 409");

  // A 422 names each problem.
  const bad = await sdk.register({ client, body: { email: "nope", password: "short", name: "x" } });
  const problems = envelope(bad.error, 422, bad.response).details ?? [];
  expect(problems.length >= 2, "a 422 lists each problem");
  expect(
    problems.every((problem) => problem.loc?.[0] === "body"),
    "each problem is located in the body",
  );

  // Sign in with JSON; a wrong password is a 401.
  const wrong = await sdk.createToken({ client, body: { email, password: "not it" } });
  envelope(wrong.error, 401, wrong.response);
  const signedIn = await sdk.createToken({ client, body: { email, password } });
  expect(signedIn.data, "sign-in answers a token pair");
  expect(signedIn.data.token_type === "bearer", "token_type is always sent");
  const auth = bearer(signedIn.data.access_token);

  // Sign in with the OAuth 2 password grant: the same call, form-encoded.
  const form = await sdk.createToken({
    client,
    body: { username: email, password, grant_type: "password" },
    ...urlSearchParamsBodySerializer,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  expect(form.request.headers.get("Content-Type") === "application/x-www-form-urlencoded", "sent as a form");
  expect(form.data?.token_type === "bearer", "the form grant answers a token pair");
  const formWrong = await sdk.createToken({
    client,
    body: { username: email, password: "not it" },
    ...urlSearchParamsBodySerializer,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  envelope(formWrong.error, 401, formWrong.response);

  const me = await sdk.getMe({ client, headers: auth });
  expect(me.data?.email === email, "/users/me is the signed-in account");

  // Create, then read it back with its ETag; a conditional GET answers 304.
  const title = `Scenario ${Date.now()}`;
  const created = await sdk.createArticle({
    client,
    headers: auth,
    body: { title, body: "Written by the generated client.", tags: ["scenario"], status: "published" },
  });
  expect(created.response.status === 201 && created.data, "create answers 201");
  const articleId = created.data.id;
  expect(created.response.headers.get("Location")?.endsWith(`/articles/${articleId}`), "Location");
  const etag = created.response.headers.get("ETag");
  expect(etag === `"${articleId}-1"`, "the new article's ETag names its first version");

  const read = await sdk.getArticle({ client, path: { article_id: articleId } });
  expect(read.data?.title === title, "the article reads back");
  const notModified = await conditional(
    sdk.getArticle({ client, path: { article_id: articleId }, headers: { "If-None-Match": etag } }),
  );
  expect(notModified.status === "not-modified", "a matching If-None-Match answers 304");
  expect(notModified.response.status === 304 && notModified.etag === etag, "the 304 names the tag");
  const changed = await conditional(
    sdk.getArticle({ client, path: { article_id: articleId }, headers: { "If-None-Match": '"0-0"' } }),
  );
  expect(changed.status === "fresh" && changed.data.id === articleId, "another tag reads the article");

  // A write naming the current version succeeds; one naming the old version is a 412.
  const updated = await sdk.updateArticle({
    client,
    path: { article_id: articleId },
    headers: { ...auth, "If-Match": etag },
    body: { title: `${title} (edited)` },
  });
  expect(updated.data?.version === 2, "the update moves the version on");
  const newTag = updated.response.headers.get("ETag");
  expect(newTag === `"${articleId}-2"`, "the update answers the new ETag");
  const stale = await sdk.updateArticle({
    client,
    path: { article_id: articleId },
    headers: { ...auth, "If-Match": etag },
    body: { title: "Lost update" },
  });
  expect(envelope(stale.error, 412, stale.response).error_code === 14001, "a stale If-Match is 412");
  expect(stale.response.headers.get("ETag") === newTag, "the 412 names the current version");

  // Lists: a filter and a page of one.
  const page = await sdk.listArticles({ client, query: { tag: "scenario", per_page: 1, page: 1 } });
  expect(page.data, "the list answers a page");
  expect(page.data.per_page === 1 && page.data.items.length === 1, "a page of one");
  expect(page.data.items.every((item) => item.tags.includes("scenario")), "the tag filter holds");
  const badPage = await sdk.listArticles({ client, query: { per_page: 1000 } });
  envelope(badPage.error, 422, badPage.response);

  // Search finds it, with highlights.
  const found = await sdk.searchArticles({ client, query: { q: "edited" } });
  expect(
    found.data?.items.some((hit) => hit.id === articleId && hit._formatted !== null),
    "search finds the article and highlights the match",
  );

  // Refresh rotates; sending the spent token again is a 401 and revokes the login.
  const refreshed = await sdk.refreshToken({
    client,
    body: { refresh_token: signedIn.data.refresh_token },
  });
  expect(refreshed.data, "refresh answers a new pair");
  const reused = await sdk.refreshToken({
    client,
    body: { refresh_token: signedIn.data.refresh_token },
  });
  envelope(reused.error, 401, reused.response);
  const revoked = await sdk.refreshToken({
    client,
    body: { refresh_token: refreshed.data.refresh_token },
  });
  envelope(revoked.error, 401, revoked.response);

  // Sign in again and sign out.
  const second = await sdk.createToken({ client, body: { email, password } });
  expect(second.data, "a second sign-in");
  const loggedOut = await sdk.logout({ client, body: { refresh_token: second.data.refresh_token } });
  expect(loggedOut.response.status === 204, "logout answers 204");

  // Delete it; then it is gone.
  const deleted = await sdk.deleteArticle({
    client,
    path: { article_id: articleId },
    headers: bearer(second.data.access_token),
  });
  expect(deleted.response.status === 204, "delete answers 204");
  const gone = await sdk.getArticle({ client, path: { article_id: articleId } });
  envelope(gone.error, 404, gone.response);

  console.log("scenario: every step passed");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
