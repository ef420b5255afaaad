/**
 * The `Date` field value (RFC 9110 §5.6.7, IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"),
 * formatted at most once a second: every response carries one, so it is not worth a Date
 * object each time.
 */
let second = -1;
let value = '';

export function httpDate(now: number = Date.now()): string {
  const s = Math.floor(now / 1000);
  if (s !== second) {
    second = s;
    value = new Date(s * 1000).toUTCString();
  }
  return value;
}
