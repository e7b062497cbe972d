// The tofu variables made from the settings, checked against the root module's declarations.
import t from 'tap';
import { tofuVarArgs, tofuVars } from '../../lib/cluster/tofu-vars.ts';
import { loadModule, ROOT_MODULE_DIR } from '../helpers/terraform-hcl.ts';

t.test(
  'tofu variables come from the settings, and each one exists in the root module',
  async (t) => {
    const vars = tofuVars(
      {
        redis: {
          namespace: 'redis',
          release: 'redis-shared',
          port: 6379,
          lbIp: '127.0.0.203',
          metallbPool: 'eero-pool',
          privateCidr: '127.0.0.0/24',
          secretName: 'redis-credentials',
          secretKey: 'redis-password',
          outsideProbeSource: undefined,
        },
        monitoring: { namespace: 'monitoring', prometheusService: 'p', prometheusPort: 9090 },
        beersystem: { namespace: 'beersystem', deployment: 'beersystem', container: 'beersystem' },
      },
      { migration: false },
    );
    t.equal(vars.enable_beersystem_migration, 'false');
    t.equal(vars.lb_ip, '127.0.0.203');
    const declared = (await loadModule(ROOT_MODULE_DIR)).variables;
    for (const name of Object.keys(vars)) t.ok(declared[name], `root module declares ${name}`);
    t.same(tofuVarArgs({ a: '1', b: 'x y' }), ['-var', 'a=1', '-var', 'b=x y']);
  },
);
