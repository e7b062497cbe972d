/**
 * The complete entries of a JSON-lines file's text. A process may be appending one the moment the
 * file is read, and the read can see its first part only: a line without its newline is not an
 * entry yet.
 */
export function jsonLines<T>(text: string): T[] {
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}
