/** MemoryWgDevice held to the WireGuard device contract (the native device runs the same suite in
 *  test/integration/wg-device-contract.test.ts). */
import { MemoryWgDevice } from '../fakes/memory-wg-device.js';
import { wgDeviceContract } from '../dataplane/wg-device.contract.js';

wgDeviceContract(
  'MemoryWgDevice',
  (privateKey) => new MemoryWgDevice({ family: 4, port: 51820, privateKey }),
);
