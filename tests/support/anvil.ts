/**
 * Test support: a REAL local EVM chain. Starts the `anvil` binary shipped by the npm package
 * `@foundry-rs/anvil` (its per-platform optional dependency holds the binary; no install script
 * is needed) on a free loopback port, deploys the precompiled TestUSDC token
 * (`fixtures/TestUSDC.json`, 6 decimals, owner-only mint), and drives the chain on demand:
 * mine blocks, snapshot / revert (reorg tests), automine on/off, drop a pending transaction.
 *
 *   const chain = await startAnvil();              // one per test file (beforeAll)
 *   const usdc = await chain.deployToken();        // deployer = dev account 0
 *   await chain.mint(usdc, addr, 5_000_000n);      // 5 USDC in base units
 *   await chain.mine(6);
 *   const snap = await chain.snapshot(); ...; await chain.revert(snap);
 *   await chain.stop();                            // afterAll; also killed on process exit
 *
 * anvil runs with `--chain-id 31337` and its default dev accounts (mnemonic "test test ... junk").
 * Every call awaits anvil's answer; nothing here sleeps.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  http,
  parseAbi,
  type Abi,
  type Address,
  type Chain,
  type Hash,
  type Hex,
  type PublicClient,
  type TestClient,
} from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

export const ANVIL_CHAIN_ID = 31337;

/** anvil's deterministic dev keys (mnemonic "test test ... junk"), each funded with 10000 ETH. */
export const DEV_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9faf04f6a1ea8",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
  "0x47e179ec197488593b187f80a00eb0da91f1b9d0b296f20a94d0eb1f42a8a6d1",
] as const satisfies readonly Hex[];

const fixture = JSON.parse(readFileSync(new URL("./fixtures/TestUSDC.json", import.meta.url), "utf8")) as {
  abi: Abi;
  bytecode: Hex;
};
const mintAbi = parseAbi(["function mint(address to, uint256 amount)"]);
const transferAbi = parseAbi(["function transfer(address to, uint256 amount) returns (bool)"]);

/** Path of the anvil binary for this platform, from `@foundry-rs/anvil-<os>-<arch>`. */
export function anvilBinary(): string {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch as string];
  if (!arch) throw new Error(`anvil: no @foundry-rs/anvil binary package for arch ${process.arch}`);
  const exe = process.platform === "win32" ? "anvil.exe" : "anvil";
  return createRequire(import.meta.url).resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/${exe}`);
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export interface Anvil {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Process id of the anvil child. */
  readonly pid: number;
  readonly chain: Chain;
  readonly publicClient: PublicClient;
  readonly testClient: TestClient;
  /** Dev account 0: deploys tokens and mints. */
  readonly deployer: PrivateKeyAccount;
  /** A fresh account funded with `eth_wei` (default 0) via anvil_setBalance. */
  fundedAccount(key: Hex, eth_wei?: bigint): Promise<PrivateKeyAccount>;
  /** Deploy a new TestUSDC (6 decimals); returns its address (EIP-55). */
  deployToken(): Promise<Address>;
  /** Mint `amount_base` token base units to `to` (mined before it returns when automine is on). */
  mint(token: Address, to: Address, amount_base: bigint): Promise<Hash>;
  /** ERC-20 transfer from `from`, waiting for the receipt (automine on). `gas` skips estimation. */
  transfer(token: Address, from: PrivateKeyAccount, to: Address, amount_base: bigint, gas?: bigint): Promise<Hash>;
  /** Mine `blocks` empty blocks (anvil_mine). */
  mine(blocks: number): Promise<void>;
  headNumber(): Promise<bigint>;
  /** evm_snapshot: an id for revert(). A snapshot can be reverted to once. */
  snapshot(): Promise<Hex>;
  /** evm_revert: the chain (blocks, state, receipts) returns to the snapshot. */
  revert(id: Hex): Promise<void>;
  setAutomine(on: boolean): Promise<void>;
  /** anvil_dropTransaction: forget a pending transaction, as a node that lost it would. */
  dropTransaction(hash: Hash): Promise<void>;
  /** SIGTERM (then SIGKILL after 5 s) and wait for exit. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start anvil on 127.0.0.1 with an OS-assigned port; resolves once it prints "Listening on".
 * Rejects (and kills the process) if it exits first or does not listen within `startTimeoutMs`.
 */
export async function startAnvil(opts: { startTimeoutMs?: number } = {}): Promise<Anvil> {
  const child = spawn(
    anvilBinary(),
    ["--host", "127.0.0.1", "--port", "0", "--chain-id", String(ANVIL_CHAIN_ID)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  live.add(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(
        () => reject(new Error(`anvil did not listen within ${opts.startTimeoutMs ?? 60_000} ms`)),
        opts.startTimeoutMs ?? 60_000,
      );
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /Listening on (127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          child.stdout?.off("data", onData);
          resolve(`http://${m[1]}`);
        }
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`anvil exited (${code}) before listening: ${stderr}`));
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  } catch (e) {
    child.kill("SIGKILL");
    live.delete(child);
    throw e;
  }
  // anvil logs every RPC call on stdout: keep draining it so the pipe never fills.
  child.stdout?.resume();

  const chain = defineChain({
    id: ANVIL_CHAIN_ID,
    name: "anvil",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const transport = http(url);
  // cacheTime 0: viem caches eth_blockNumber for 4 s by default, which would hide mined blocks.
  const publicClient = createPublicClient({ chain, transport, cacheTime: 0 }) as PublicClient;
  const testClient = createTestClient({ chain, transport, mode: "anvil", cacheTime: 0 }) as TestClient;
  const deployer = privateKeyToAccount(DEV_KEYS[0]);
  const wallet = (account: PrivateKeyAccount) => createWalletClient({ chain, transport, account });
  const receipt = async (hash: Hash): Promise<Hash> => {
    await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20, timeout: 60_000 });
    return hash;
  };
  let stopped = false;

  return {
    url,
    pid: child.pid as number,
    chain,
    publicClient,
    testClient,
    deployer,
    async fundedAccount(key, eth_wei = 0n) {
      const account = privateKeyToAccount(key);
      await testClient.setBalance({ address: account.address, value: eth_wei });
      return account;
    },
    async deployToken() {
      const hash = await wallet(deployer).deployContract({ abi: fixture.abi, bytecode: fixture.bytecode, args: [] });
      const r = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20, timeout: 60_000 });
      if (!r.contractAddress || r.status !== "success") throw new Error(`token deploy failed: ${r.status}`);
      return r.contractAddress;
    },
    async mint(token, to, amount_base) {
      return receipt(await wallet(deployer).writeContract({ address: token, abi: mintAbi, functionName: "mint", args: [to, amount_base] }));
    },
    async transfer(token, from, to, amount_base, gas) {
      return receipt(
        await wallet(from).writeContract({
          address: token,
          abi: transferAbi,
          functionName: "transfer",
          args: [to, amount_base],
          ...(gas === undefined ? {} : { gas }),
        }),
      );
    },
    async mine(blocks) {
      await testClient.mine({ blocks });
    },
    headNumber: () => publicClient.getBlockNumber(),
    snapshot: () => testClient.snapshot(),
    async revert(id) {
      await testClient.revert({ id });
    },
    async setAutomine(on) {
      await testClient.setAutomine(on);
    },
    async dropTransaction(hash) {
      await testClient.dropTransaction({ hash });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
      live.delete(child);
    },
  };
}
