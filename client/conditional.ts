// A conditional GET through the generated SDK, with 304 as what it is: a success
// without a body ("your copy is current").
//
// The document declares each 304 with its headers and no content. The generator
// (@hey-api/openapi-ts 0.95) leaves every 3XX response out of the types it writes,
// and its fetch client hands any status that is not 2xx to the `error` branch, so
// the SDK alone reports a 304 as `error: {}` typed as an error envelope. Wrap the
// call, and the 304 gets a branch of its own:
//
//   const read = await conditional(
//     sdk.getArticle({ client, path: { article_id }, headers: { "If-None-Match": etag } }),
//   );
//   if (read.status === "not-modified") { /* keep the copy you hold */ }
//   else if (read.status === "fresh") { /* read.data is the Article, read.etag its tag */ }
//   else { /* read.error is the envelope */ }

/** What an SDK call resolves to, when it does not throw on errors. */
type SdkResult<TData, TError> = (
  | { data: TData; error: undefined }
  | { data: undefined; error: TError }
) & { response: Response };

export type Conditional<TData, TError> =
  | { status: "fresh"; data: TData; etag: string | null; response: Response }
  | { status: "not-modified"; etag: string | null; response: Response }
  | { status: "error"; error: TError; response: Response };

export async function conditional<TData, TError>(
  call: Promise<SdkResult<TData, TError>>,
): Promise<Conditional<TData, TError>> {
  const result = await call;
  const { response } = result;
  const etag = response.headers.get("ETag");
  if (response.status === 304) {
    return { status: "not-modified", etag, response };
  }
  if (result.error !== undefined) {
    return { status: "error", error: result.error, response };
  }
  // No error: the SDK's other branch, whose data is the 2xx body.
  return { status: "fresh", data: result.data as TData, etag, response };
}
