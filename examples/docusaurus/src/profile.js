// The onboarding profile's allowed values: exactly the enums of Lanyard's
// openapi.yaml (Profile.python_proficiency, Profile.developer_role).
export const PYTHON_PROFICIENCY = [
  ['none', 'None yet'],
  ['beginner', 'Beginner'],
  ['intermediate', 'Intermediate'],
  ['advanced', 'Advanced'],
];

export const DEVELOPER_ROLE = [
  ['student', 'Student'],
  ['hobbyist', 'Hobbyist'],
  ['software_engineer', 'Software engineer'],
  ['data_scientist', 'Data scientist'],
  ['ml_engineer', 'ML engineer'],
  ['robotics_engineer', 'Robotics engineer'],
  ['researcher', 'Researcher'],
  ['educator', 'Educator'],
  ['other', 'Other'],
];
