import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLanyard, type Lanyard } from '../src/index.js';
import { LanyardProvider, RequireAuth, RequireProfile, useLanyard, useSession } from '../src/react.js';
import { FakeChannel, FakeServer, LANYARD, removeLocks, tick } from './helpers.js';

const PASSWORD = 'correct horse battery staple';
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let server: FakeServer;
let container: HTMLDivElement;
let root: Root;

beforeEach(() => {
  server = new FakeServer();
  FakeChannel.reset();
  vi.stubGlobal('BroadcastChannel', FakeChannel);
  removeLocks();
  container = document.createElement('div');
  document.body.appendChild(container);
  root = createRoot(container);
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
});

function Status() {
  const { status, session, lanyard } = useSession();
  const same = useLanyard() === lanyard;
  return (
    <p>
      {status}|{session?.user.email ?? '-'}|{session?.profileComplete ? 'complete' : 'incomplete'}|{String(same)}
    </p>
  );
}

/** Lets effects, the restore request and broadcasts run until `done()` holds (3 s at most). */
async function settle(done: () => boolean = () => !container.textContent?.startsWith('loading')): Promise<void> {
  const end = Date.now() + 3000;
  do {
    await act(async () => {
      await tick(20);
    });
  } while (!done() && Date.now() < end);
}

describe('React bindings', () => {
  it('useSession goes loading → signed-out, and follows sign-in/sign-out', async () => {
    const lanyard = createLanyard({ url: LANYARD, fetch: server.fetch });
    const navigate = vi.fn();
    server.latency = 20;
    act(() =>
      root.render(
        <LanyardProvider client={lanyard} navigate={navigate}>
          <Status />
        </LanyardProvider>,
      ),
    );
    expect(container.textContent).toBe('loading|-|incomplete|true');
    await settle();
    expect(container.textContent).toBe('signed-out|-|incomplete|true');
    expect(server.count('/v1/auth/refresh')).toBe(1); // the provider's restore attempt

    await act(async () => {
      await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    });
    expect(container.textContent).toBe('signed-in|ada@example.com|incomplete|true');
    await act(async () => {
      await lanyard.updateProfile({ python_proficiency: 'beginner', developer_role: 'student' });
    });
    expect(container.textContent).toBe('signed-in|ada@example.com|complete|true');
    await act(async () => {
      await lanyard.signOut();
    });
    expect(container.textContent).toBe('signed-out|-|incomplete|true');
    expect(navigate).not.toHaveBeenCalled();
  });

  it('restores the session on mount (cookie)', async () => {
    server.cookie = true;
    const lanyard = createLanyard({ url: LANYARD, fetch: server.fetch });
    act(() =>
      root.render(
        <LanyardProvider client={lanyard}>
          <Status />
        </LanyardProvider>,
      ),
    );
    await settle();
    expect(container.textContent).toBe('signed-in|ada@example.com|incomplete|true');
  });

  it('RequireAuth redirects a signed-out visitor and shows children to a signed-in one', async () => {
    const navigate = vi.fn();
    const lanyard = createLanyard({ url: LANYARD, fetch: server.fetch });
    act(() =>
      root.render(
        <LanyardProvider client={lanyard} navigate={navigate}>
          <RequireAuth redirectTo="/signin" fallback={<i>wait</i>}>
            <b>secret</b>
          </RequireAuth>
        </LanyardProvider>,
      ),
    );
    expect(container.innerHTML).toBe('<i>wait</i>');
    expect(navigate).not.toHaveBeenCalled(); // not while loading
    await settle(() => navigate.mock.calls.length > 0);
    expect(navigate).toHaveBeenCalledWith('/signin');
    expect(container.innerHTML).toBe('<i>wait</i>');
    await act(async () => {
      await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    });
    expect(container.innerHTML).toBe('<b>secret</b>');
    expect(navigate).toHaveBeenCalledTimes(1);
  });

  it('RequireProfile: signed out → signInTo, incomplete → redirectTo, complete → children', async () => {
    const navigate = vi.fn();
    const lanyard = createLanyard({ url: LANYARD, fetch: server.fetch });
    const tree = (
      <LanyardProvider client={lanyard} navigate={navigate}>
        <RequireProfile redirectTo="/onboarding" signInTo="/signin" fallback="…">
          <b>chapter</b>
        </RequireProfile>
      </LanyardProvider>
    );
    act(() => root.render(tree));
    await settle(() => navigate.mock.calls.length > 0);
    expect(navigate).toHaveBeenLastCalledWith('/signin');
    await act(async () => {
      await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    });
    expect(navigate).toHaveBeenLastCalledWith('/onboarding');
    expect(container.innerHTML).toBe('…');
    await act(async () => {
      await lanyard.updateProfile({ python_proficiency: 'advanced', developer_role: 'researcher' });
    });
    expect(container.innerHTML).toBe('<b>chapter</b>');
    expect(navigate).toHaveBeenCalledTimes(2);
  });

  it('follows another tab signing out', async () => {
    server.cookie = true;
    const lanyard = createLanyard({ url: LANYARD, fetch: server.fetch });
    const other: Lanyard = createLanyard({ url: LANYARD, fetch: server.fetch });
    act(() =>
      root.render(
        <LanyardProvider client={lanyard}>
          <Status />
        </LanyardProvider>,
      ),
    );
    await settle();
    expect(container.textContent).toMatch(/^signed-in/);
    await other.getAccessToken();
    await act(async () => {
      await other.signOut();
    });
    await settle(() => container.textContent?.startsWith('signed-out') === true);
    expect(container.textContent).toBe('signed-out|-|incomplete|true');
  });

  it('hooks outside the provider throw a clear error', () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(() => act(() => root.render(<Status />))).toThrow(/inside <LanyardProvider>/);
    spy.mockRestore();
  });
});
