import t from 'tap';
import {
  flattenInfo,
  hostOfAddr,
  keyspaceFromInfo,
  parseClientList,
  parseInfo,
  persistenceFromInfo,
  replicationFromInfo,
} from '../../lib/redis/redis-info.ts';

// Shapes as Redis 7 prints them (CRLF line ends, `# Section` headers).
const PRIMARY_INFO = [
  '# Replication',
  'role:master',
  'connected_slaves:1',
  'slave0:ip=10.42.1.7,port=6379,state=online,offset=1234,lag=0',
  'master_replid:abc123',
  'master_repl_offset:1250',
  '',
  '# Persistence',
  'loading:0',
  'rdb_changes_since_last_save:4',
  'rdb_last_bgsave_status:ok',
  'aof_enabled:1',
  'aof_last_write_status:ok',
  '',
  '# Keyspace',
  'db0:keys=12,expires=3,avg_ttl=1000',
  'db3:keys=1,expires=0,avg_ttl=0',
  '',
].join('\r\n');

const REPLICA_INFO = [
  '# Replication',
  'role:slave',
  'master_host:redis-shared-master-0.redis-shared-headless',
  'master_port:6379',
  'master_link_status:down',
  'master_last_io_seconds_ago:-1',
  'slave_repl_offset:1200',
  'connected_slaves:0',
  'master_repl_offset:1200',
].join('\n');

t.test('INFO is parsed into lower-case sections of raw fields', async (t) => {
  const info = parseInfo(PRIMARY_INFO);
  t.same(Object.keys(info), ['replication', 'persistence', 'keyspace']);
  t.equal(info.replication?.role, 'master');
  t.equal(info.persistence?.aof_enabled, '1');
  t.equal(flattenInfo(info).rdb_last_bgsave_status, 'ok');
});

t.test(
  'INFO without section headers lands in a default section; junk lines are ignored',
  async (t) => {
    t.same(parseInfo('role:master\nnot a field\n:novalue\n'), { default: { role: 'master' } });
  },
);

t.test('replication fields of a primary, with its replicas', async (t) => {
  const r = replicationFromInfo(parseInfo(PRIMARY_INFO));
  t.same(r, {
    role: 'master',
    connectedSlaves: 1,
    masterReplOffset: 1250,
    replicas: [{ ip: '10.42.1.7', port: 6379, state: 'online', offset: 1234, lag: 0 }],
  });
});

t.test('replication fields of a replica with a broken link', async (t) => {
  const r = replicationFromInfo(parseInfo(REPLICA_INFO));
  t.equal(r.role, 'slave');
  t.equal(r.masterHost, 'redis-shared-master-0.redis-shared-headless');
  t.equal(r.masterPort, 6379);
  t.equal(r.masterLinkStatus, 'down');
  t.equal(r.masterLastIoSecondsAgo, -1);
  t.equal(r.slaveReplOffset, 1200);
  t.same(r.replicas, []);
});

t.test('an empty INFO gives defaults rather than throwing', async (t) => {
  t.same(replicationFromInfo({}), {
    role: 'unknown',
    connectedSlaves: 0,
    masterReplOffset: 0,
    replicas: [],
  });
  t.same(persistenceFromInfo({}), { aofEnabled: false, loading: false });
  t.same(keyspaceFromInfo({}), []);
});

t.test('persistence and keyspace', async (t) => {
  const info = parseInfo(PRIMARY_INFO);
  t.same(persistenceFromInfo(info), {
    aofEnabled: true,
    loading: false,
    aofLastWriteStatus: 'ok',
    rdbLastBgsaveStatus: 'ok',
    rdbChangesSinceLastSave: 4,
  });
  t.same(keyspaceFromInfo(info), [
    { db: 0, keys: 12, expires: 3, avgTtl: 1000 },
    { db: 3, keys: 1, expires: 0, avgTtl: 0 },
  ]);
});

t.test('CLIENT LIST lines become clients with names, addresses and ages', async (t) => {
  const text = [
    'id=7 addr=10.42.2.15:51234 laddr=10.42.1.5:6379 fd=9 name=beersystem age=3600 idle=2 flags=N db=0 sub=0 cmd=get user=default',
    'id=9 addr=[::1]:40000 fd=10 name= age=1 idle=0 flags=N db=2 cmd=client|list',
    'garbage without an address',
    '',
  ].join('\n');
  const clients = parseClientList(text);
  t.equal(clients.length, 2);
  t.match(clients[0], {
    id: 7,
    addr: '10.42.2.15:51234',
    laddr: '10.42.1.5:6379',
    name: 'beersystem',
    ageSeconds: 3600,
    idleSeconds: 2,
    db: 0,
    lastCommand: 'get',
    user: 'default',
  });
  t.equal(clients[0]?.fields.flags, 'N');
  t.equal(clients[1]?.name, '');
  t.equal(clients[1]?.laddr, undefined);
  t.equal(clients[1]?.db, 2);
});

t.test('the host of an address, IPv4 and IPv6', async (t) => {
  t.equal(hostOfAddr('10.42.2.15:51234'), '10.42.2.15');
  t.equal(hostOfAddr('[::1]:6379'), '::1');
  t.equal(hostOfAddr('::1:6379'), '::1');
  t.equal(hostOfAddr('nohost'), 'nohost');
});
