export { createLanyard } from './client.js';
export { LanyardError } from './errors.js';
export { attachAxios } from './axios.js';
export type { AxiosLikeInstance, AxiosLikeRequestConfig, AxiosLikeError } from './axios.js';
export { PYTHON_PROFICIENCIES, DEVELOPER_ROLES } from './types.js';
export type {
  TokenDelivery,
  PythonProficiency,
  DeveloperRole,
  Profile,
  User,
  Session,
  Problem,
  LanyardOptions,
  SignUpInput,
  SignInInput,
  ProfileInput,
  LanyardResponse,
  SessionListener,
  Lanyard,
} from './types.js';
