// The text Envoy puts after "delayed connect error: " for a failed upstream connect: strerror() of the socket
// error (source/common/common/utility.cc errorDetails). Shared by the HTTP/1.1 and HTTP/2 upstreams.
const STRERROR: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ECONNRESET: "Connection reset by peer",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  ETIMEDOUT: "Connection timed out",
  EADDRNOTAVAIL: "Cannot assign requested address",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
};

export function connectFailureText(err: NodeJS.ErrnoException): string {
  const code = err.code ?? "";
  return `delayed connect error: ${STRERROR[code] ?? (code || err.message)}`;
}
