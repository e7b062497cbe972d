// The sha256 of a file, read as a stream so a snapshot of any size is hashed in constant memory.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
