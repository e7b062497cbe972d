/** The password a Secret keeps, read with kubectl as an operator would, base64-decoded. */
export async function secretPassword(
  kubectl: (args: string[]) => Promise<string>,
  namespace: string,
  name = 'redis-credentials',
): Promise<string> {
  const encoded = await kubectl([
    'get',
    'secret',
    name,
    '-n',
    namespace,
    '-o',
    'jsonpath={.data.redis-password}',
  ]);
  return Buffer.from(encoded.trim(), 'base64').toString('utf8');
}
