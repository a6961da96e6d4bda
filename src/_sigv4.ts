// AWS Signature Version 4 over Web Crypto, for the direct transport (src/_direct_client.ts):
// the signature @smithy/signature-v4 computes for the same request (tests/sigv4_test.ts
// compares the two), without its generic request model. The body is hashed once, as the
// bytes that are sent; the signing key changes once a day, so it is derived once and kept
// as a CryptoKey, and a request costs two SHA-256 and one HMAC.

const UTF8 = new TextEncoder();
const ALGORITHM = "AWS4-HMAC-SHA256";

/** The credentials a request is signed with. */
export interface SigningCredentials {
  /** The access key id. */
  accessKeyId: string;
  /** The secret access key. */
  secretAccessKey: string;
  /** The session token of temporary credentials; sent and signed as `x-amz-security-token`. */
  sessionToken?: string | undefined;
}

/** One request to sign. */
export interface SigningRequest {
  /** Where the request goes; its path is signed, its host is signed as `host`. */
  url: URL;
  /** Headers to sign and send besides `host`, `x-amz-date` and the session token: lower-case names. */
  headers: Record<string, string>;
  /** The request body, exactly as sent. */
  body: Uint8Array;
  /** The credentials. */
  credentials: SigningCredentials;
  /** The signing region. */
  region: string;
  /** The signing service name. */
  service: string;
  /** The signing time. */
  date: Date;
}

/** Signs requests; keeps the last signing key. */
export class SigV4Signer {
  #key: { scope: string; secret: string; key: CryptoKey } | undefined;

  /**
   * Signs one request.
   *
   * @param request The request.
   * @returns The headers to send: the request's own, plus `x-amz-date`, the session token
   * when there is one, and `authorization`. `host` is left to `fetch`.
   */
  async sign(request: SigningRequest): Promise<Record<string, string>> {
    const { url, credentials } = request;
    const amzDate = request.date.toISOString().replace(/[-:]|\.\d{3}/g, "");
    const day = amzDate.slice(0, 8);
    const headers: Record<string, string> = { ...request.headers, "x-amz-date": amzDate };
    // An empty token is no token, as @smithy/signature-v4 reads it: no header is sent.
    if (credentials.sessionToken) {
      headers["x-amz-security-token"] = credentials.sessionToken;
    }
    const signed: [string, string][] = Object.entries(headers);
    signed.push(["host", url.host]);
    signed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let canonicalHeaders = "";
    for (const [name, value] of signed) canonicalHeaders += `${name}:${value.trim()}\n`;
    const signedHeaders = signed.map(([name]) => name).join(";");
    const canonicalRequest = `POST\n${canonicalPath(url.pathname)}\n${
      canonicalQuery(url.searchParams)
    }\n${canonicalHeaders}\n${signedHeaders}\n${await sha256Hex(request.body)}`;
    const scope = `${day}/${request.region}/${request.service}/aws4_request`;
    const stringToSign = `${ALGORITHM}\n${amzDate}\n${scope}\n${await sha256Hex(
      UTF8.encode(canonicalRequest),
    )}`;
    const key = await this.#signingKey(credentials.secretAccessKey, scope);
    const signature = hex(await crypto.subtle.sign("HMAC", key, UTF8.encode(stringToSign)));
    headers.authorization = `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  async #signingKey(secret: string, scope: string): Promise<CryptoKey> {
    const cached = this.#key;
    if (cached !== undefined && cached.scope === scope && cached.secret === secret) {
      return cached.key;
    }
    let raw: ArrayBuffer | Uint8Array = UTF8.encode(`AWS4${secret}`);
    for (const part of scope.split("/")) raw = await hmac(raw, part);
    const key = await hmacKey(raw);
    this.#key = { scope, secret, key };
    return key;
  }
}

/**
 * The path as AWS signs it for every service but S3: empty segments dropped (`URL` has
 * already resolved `.` and `..`), the rest URI-encoded once more.
 */
function canonicalPath(pathname: string): string {
  const segments = pathname.split("/").filter((segment) => segment !== "");
  if (segments.length === 0) return "/";
  const path = `/${segments.join("/")}${pathname.endsWith("/") ? "/" : ""}`;
  return rfc3986(path).replace(/%2F/g, "/");
}

function canonicalQuery(params: URLSearchParams): string {
  const pairs: string[] = [];
  for (const [name, value] of params) pairs.push(`${rfc3986(name)}=${rfc3986(value)}`);
  return pairs.sort().join("&");
}

function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function hmacKey(raw: ArrayBuffer | Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    raw as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

async function hmac(raw: ArrayBuffer | Uint8Array, text: string): Promise<ArrayBuffer> {
  return await crypto.subtle.sign("HMAC", await hmacKey(raw), UTF8.encode(text));
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hex(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += HEX[bytes[i]!];
  return text;
}
